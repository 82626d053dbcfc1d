{{ config(order_by='rank', enabled=(target.type == 'chdb')) }}

{%- set n = neighbours_var('underexposed_neighbours') %}
{%- set max_dist = float_var('underexposed_max_dist', 0, 2) %}
{%- set min_lookalikes = int_var('underexposed_min_lookalikes', 1, 1000) %}
{%- set min_downloads = int_var('underexposed_min_neighbour_downloads', 1, 1000000000) %}
{%- set max_share = float_var('underexposed_max_share', 0, 1) %}

-- Photos whose look-alikes are downloaded far more than they are: among a
-- photo's `underexposed_neighbours` nearest photos, those at most
-- `underexposed_max_dist` away are its look-alikes. A photo with at least
-- `underexposed_min_lookalikes` of them, whose look-alikes' median downloads
-- reach `underexposed_min_neighbour_downloads`, and whose own downloads are at
-- most `underexposed_max_share` of that median, is listed: it looks like what
-- users download but is not found, so better tags or promotion may pay.

with

photos as (
    select
        photo_id,
        photo_image_url
    from {{ ref('photos') }}
),

neighbours as (
    select
        photo_id,
        neighbour_id,
        dist
    from {{ ref('photo_neighbours') }}
    where rank <= {{ n }} and dist <= {{ max_dist }}
),

conversions as (
    select photo_id
    from {{ ref('stg_conversions') }}
),

suggestions as (
    select
        photo_id,
        keyword,
        rank
    from {{ ref('keyword_suggestions') }}
),

downloads_per_photo as (
    select
        photo_id,
        count() as downloads
    from conversions
    group by photo_id
),

photo_downloads as (
    select
        photos.photo_id as photo_id,
        photos.photo_image_url as photo_image_url,
        coalesce(downloads_per_photo.downloads, 0) as downloads
    from photos
    left join downloads_per_photo on photos.photo_id = downloads_per_photo.photo_id
),

lookalikes as (
    select
        neighbours.photo_id as photo_id,
        neighbours.neighbour_id as neighbour_id,
        neighbours.dist as dist,
        photo_downloads.downloads as downloads
    from neighbours
    inner join photo_downloads on neighbours.neighbour_id = photo_downloads.photo_id
),

per_photo as (
    select
        photo_id,
        count() as lookalikes,
        quantileExactInclusive(0.5)(toFloat64(downloads)) as neighbour_downloads,  -- noqa: LT01
        argMax(neighbour_id, (downloads, -dist)) as top_lookalike_id,
        max(downloads) as top_lookalike_downloads,
        avg(dist) as mean_dist
    from lookalikes
    group by photo_id
),

keywords_to_try as (
    select
        photo_id,
        arrayMap(pair -> pair.2, arraySort(groupArray((rank, keyword)))) as suggested_keywords
    from suggestions
    group by photo_id
),

underexposed as (
    select
        photo_downloads.photo_id as photo_id,
        photo_downloads.photo_image_url as photo_image_url,
        photo_downloads.downloads as downloads,
        per_photo.neighbour_downloads as neighbour_downloads,
        per_photo.lookalikes as lookalikes,
        per_photo.top_lookalike_id as top_lookalike_id,
        per_photo.top_lookalike_downloads as top_lookalike_downloads,
        per_photo.mean_dist as mean_dist
    from photo_downloads
    inner join per_photo on photo_downloads.photo_id = per_photo.photo_id
    where
        per_photo.lookalikes >= {{ min_lookalikes }}
        and per_photo.neighbour_downloads >= {{ min_downloads }}
        and photo_downloads.downloads <= {{ max_share }} * per_photo.neighbour_downloads
),

final as (
    select
        underexposed.photo_id as photo_id,
        underexposed.photo_image_url as photo_image_url,
        {{ picture_url('underexposed.photo_id', 'underexposed.photo_image_url') }} as picture_url,
        toUInt64(underexposed.downloads) as downloads,
        toFloat64(underexposed.neighbour_downloads) as neighbour_downloads,
        toFloat64(underexposed.downloads / underexposed.neighbour_downloads) as download_share,
        toUInt32(underexposed.lookalikes) as lookalikes,
        underexposed.top_lookalike_id as top_lookalike_id,
        toUInt64(underexposed.top_lookalike_downloads) as top_lookalike_downloads,
        toFloat64(underexposed.mean_dist) as mean_dist,
        coalesce(keywords_to_try.suggested_keywords, []) as suggested_keywords,
        toUInt32(row_number() over (
            order by underexposed.neighbour_downloads - underexposed.downloads desc, underexposed.photo_id asc
        )) as rank
    from underexposed
    left join keywords_to_try on underexposed.photo_id = keywords_to_try.photo_id
)

select * from final
