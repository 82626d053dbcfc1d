{{ config(materialized='parameterized_view') }}

{%- set photo_id = query_parameter('photo_id', 'String') %}
{%- set k = query_parameter('k', 'UInt32') %}

-- The k photos nearest to any photo, asked interactively by BI tools:
--     select * from analytics.neighbours(photo_id = '…', k = 10)
-- Same shape and vector-index search as top_k_neighbours, no dbt run needed.

with

nearest as (
    select
        candidates.photo_id,
        candidates.photo_image_url,
        {{ vector_distance(
            'candidates.photo_embed',
            '(select target_photos.photo_embed from ' ~ ref('photos') ~ ' as target_photos'
            ~ ' where target_photos.photo_id = ' ~ photo_id ~ ' limit 1)'
        ) }} as dist
    from {{ ref('photos') }} as candidates
    order by dist asc
    limit {{ k }} + 1
),

final as (
    select
        {{ photo_id }} as target_photo_id,
        photo_id,
        photo_image_url,
        toFloat64(dist) as dist,
        toUInt32(row_number() over (order by dist asc, photo_id asc)) as rank
    from nearest
    where photo_id != {{ photo_id }}
    order by rank
    limit {{ k }}
)

select * from final
