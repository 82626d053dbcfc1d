-- analytics.filtered_neighbours as dbt compiled it at commit a2f970a (issue 17's first round: the share that
-- passes counted over every photo), for timing side by side with today's (filtered_topk.py --view-sql); 512-d.
with
(select arrayResize(any(target_photos.photo_embed), 512)
        from `analytics`.`photos` as target_photos
        where target_photos.photo_id = {photo_id:String}) as target_embed,
(
    select count()
    from `analytics`.`photo_attributes` as photo_filters
    where ({keyword:String} = '' or has(photo_filters.keywords, lower(trim({keyword:String}))))
    and ({colour:String} = '' or has(photo_filters.colours, lower(trim({colour:String}))))
    and ({country:String} = '' or lower(photo_filters.country) = lower(trim({country:String})))
    and ({photographer:String} = '' or photo_filters.photographer = trim({photographer:String}))
    and (
        {date_from:String} = ''
        or toDate32(photo_filters.submitted_at) >= toDate32(if({date_from:String} = '', '1900-01-01', {date_from:String}))
    )
    and (
        {date_to:String} = ''
        or toDate32(photo_filters.submitted_at) <= toDate32(if({date_to:String} = '', '2299-12-31', {date_to:String}))
    )
    and photo_filters.downloads >= {min_downloads:UInt64}
) as passing_photos,
(select count() from `analytics`.`photo_attributes`) as all_photos,
toUInt64(ceil(
    ({k:UInt32} + 1) * 4.0 * all_photos / greatest(passing_photos, 1)
)) + least(toUInt64({k:UInt32}), 0) as wanted_candidates,
wanted_candidates <= 1000 as by_index,
(
    select groupArray(fetched.photo_id)
    from (
        select
            candidates.photo_id as photo_id,
            cosineDistance(candidates.photo_embed, target_embed) as dist
        from `analytics`.`photos` as candidates
        where by_index
        order by dist asc
        limit wanted_candidates
    ) as fetched
) as candidate_ids,
(
    select groupArray(photo_filters.photo_id)
    from `analytics`.`photo_attributes` as photo_filters
    where
        photo_filters.photo_id in (select arrayJoin(candidate_ids))
        and ({keyword:String} = '' or has(photo_filters.keywords, lower(trim({keyword:String}))))
    and ({colour:String} = '' or has(photo_filters.colours, lower(trim({colour:String}))))
    and ({country:String} = '' or lower(photo_filters.country) = lower(trim({country:String})))
    and ({photographer:String} = '' or photo_filters.photographer = trim({photographer:String}))
    and (
        {date_from:String} = ''
        or toDate32(photo_filters.submitted_at) >= toDate32(if({date_from:String} = '', '1900-01-01', {date_from:String}))
    )
    and (
        {date_to:String} = ''
        or toDate32(photo_filters.submitted_at) <= toDate32(if({date_to:String} = '', '2299-12-31', {date_to:String}))
    )
    and photo_filters.downloads >= {min_downloads:UInt64}
) as passing_ids,
length(arrayFilter(passing_id -> passing_id != {photo_id:String}, passing_ids)) < {k:UInt32} as index_fell_short,
by_index and not index_fell_short as answered_by_index,
index_passing as (
    select
        candidates.photo_id as photo_id,
        candidates.photo_image_url as photo_image_url,
        cosineDistance(candidates.photo_embed, target_embed) as dist
    from `analytics`.`photos` as candidates
    where
        answered_by_index
        and candidates.photo_id in (select arrayJoin(passing_ids))
),
exact_passing as (
    select
        photo_id,
        photo_image_url,
        dist
    from (
        select
            candidates.photo_id as photo_id,
            candidates.photo_image_url as photo_image_url,
            cosineDistance(candidates.photo_embed, target_embed) as dist
        from `analytics`.`photos` as candidates
        where candidates.photo_id in (
            select photo_filters.photo_id
            from `analytics`.`photo_attributes` as photo_filters
            where
                not answered_by_index
                and ({keyword:String} = '' or has(photo_filters.keywords, lower(trim({keyword:String}))))
    and ({colour:String} = '' or has(photo_filters.colours, lower(trim({colour:String}))))
    and ({country:String} = '' or lower(photo_filters.country) = lower(trim({country:String})))
    and ({photographer:String} = '' or photo_filters.photographer = trim({photographer:String}))
    and (
        {date_from:String} = ''
        or toDate32(photo_filters.submitted_at) >= toDate32(if({date_from:String} = '', '1900-01-01', {date_from:String}))
    )
    and (
        {date_to:String} = ''
        or toDate32(photo_filters.submitted_at) <= toDate32(if({date_to:String} = '', '2299-12-31', {date_to:String}))
    )
    and photo_filters.downloads >= {min_downloads:UInt64}
        )
    ) as passing
    order by dist asc
    limit {k:UInt32} + 1
),
nearest as (
    select
        photo_id,
        photo_image_url,
        dist
    from index_passing
    union all
    select
        photo_id,
        photo_image_url,
        dist
    from exact_passing
)
select
    {photo_id:String} as target_photo_id,
    photo_id,
    photo_image_url,
    if(
        startsWith(photo_image_url, 'https://') or startsWith(photo_image_url, 'http://'),
        photo_image_url,
        concat('http://127.0.0.1:8123', '/photos/', encodeURLComponent(photo_id), '.jpg')
    ) as picture_url,
    toFloat64(dist) as dist,
    toUInt32(row_number() over (order by dist asc, photo_id asc)) as rank
from nearest
where
    photo_id != {photo_id:String}
    and L2Norm(target_embed) > 0
order by dist asc, photo_id asc
limit {k:UInt32}
