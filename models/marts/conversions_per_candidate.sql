{{ config(order_by='rank') }}

with

candidates as (
    select
        target_photo_id,
        photo_id,
        rank
    from {{ ref('top_k_neighbours') }}
),

conversions as (
    select stg_conversions.photo_id
    from {{ ref('stg_conversions') }} as stg_conversions
    where stg_conversions.photo_id in (select candidates.photo_id from candidates)
),

downloads_per_photo as (
    select
        photo_id,
        count() as downloads
    from conversions
    group by photo_id
),

final as (
    select
        candidates.target_photo_id as target_photo_id,
        candidates.photo_id as photo_id,
        candidates.rank as rank,
        toUInt64(coalesce(downloads_per_photo.downloads, 0)) as downloads
    from candidates
    left join downloads_per_photo
        on candidates.photo_id = downloads_per_photo.photo_id
    order by downloads desc, rank asc
)

select * from final
