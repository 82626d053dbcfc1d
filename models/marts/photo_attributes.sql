{{ config(order_by='photo_id', settings={'index_granularity': 256}) }}

-- One row per photo with what filtered searches select on: photographer,
-- country, submission time, downloads, keywords and colours.
--
-- Granules of 256 rows: filtered_neighbours checks its index candidates here
-- by photo_id, and each candidate reads the granule that holds it (at the
-- default 8,192 rows, 88 candidates read most of the table).

with

photos as (
    select photo_id
    from {{ ref('photos') }}
),

details as (
    select
        photo_id,
        photographer,
        country,
        submitted_at
    from {{ ref('stg_photo_details') }}
),

conversions as (
    select
        photo_id,
        keyword
    from {{ ref('stg_conversions') }}
),

tags as (
    select
        photo_id,
        keyword
    from {{ ref('stg_photo_tags') }}
),

colours as (
    select
        photo_id,
        colour
    from {{ ref('stg_photo_colours') }}
),

downloads_per_photo as (
    select
        photo_id,
        count() as downloads,
        groupUniqArray(keyword) as search_keywords
    from conversions
    group by photo_id
),

tags_per_photo as (
    select
        photo_id,
        groupUniqArray(keyword) as tag_keywords
    from tags
    group by photo_id
),

colours_per_photo as (
    select
        photo_id,
        groupUniqArray(colour) as colour_names
    from colours
    group by photo_id
),

final as (
    select
        photos.photo_id as photo_id,
        details.photographer as photographer,
        details.country as country,
        details.submitted_at as submitted_at,
        toUInt64(coalesce(downloads_per_photo.downloads, 0)) as downloads,
        arraySort(arrayDistinct(arrayConcat(
            coalesce(downloads_per_photo.search_keywords, []),
            coalesce(tags_per_photo.tag_keywords, [])
        ))) as keywords,
        arraySort(coalesce(colours_per_photo.colour_names, [])) as colours
    from photos
    left join details on photos.photo_id = details.photo_id
    left join downloads_per_photo on photos.photo_id = downloads_per_photo.photo_id
    left join tags_per_photo on photos.photo_id = tags_per_photo.photo_id
    left join colours_per_photo on photos.photo_id = colours_per_photo.photo_id
)

select * from final
