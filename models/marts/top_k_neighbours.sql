{{ config(materialized='table', order_by='rank') }}

{%- set target = target_photo_literal(ref('photos')) %}
{%- set k = int_var('top_k', 1, 100000) %}

with

photos as (
    select
        photo_id,
        photo_image_url,
        photo_embed
    from {{ ref('photos') }}
),

-- `order by dist limit n` over the whole table is what the vector index
-- answers; a where clause would be applied after the index search and could
-- leave fewer than k rows, so the target is dropped afterwards from k + 1.
nearest as (
    select
        photo_id,
        photo_image_url,
        {{ vector_distance(
            'photo_embed',
            '(select target_photos.photo_embed from photos as target_photos where target_photos.photo_id = '
            ~ target ~ ' limit 1)'
        ) }} as dist
    from photos
    order by dist asc
    limit {{ k + 1 }}
),

final as (
    select
        {{ target }} as target_photo_id,
        photo_id,
        photo_image_url,
        toFloat64(dist) as dist,
        toUInt32(row_number() over (order by dist asc, photo_id asc)) as rank
    from nearest
    where photo_id != {{ target }}
    order by rank
    limit {{ k }}
)

select * from final
