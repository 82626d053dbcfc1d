{{ config(materialized='table', order_by='rank', query_settings=vector_search_settings()) }}

{%- set target = target_photo_literal(ref('photos')) %}
{%- set k = int_var('top_k', 1, 100000) %}

with

-- `order by dist limit n` straight over the indexed table is the shape the
-- vector index answers: wrapped in an import CTE, or with a where clause
-- (applied after the index search, leaving fewer than k rows), it is not.
-- So the table is read here directly and the target dropped from k + 1 rows.
nearest as (
    select
        candidates.photo_id,
        candidates.photo_image_url,
        {{ vector_distance(
            'candidates.photo_embed',
            '(select target_photos.photo_embed from ' ~ ref('photos') ~ ' as target_photos'
            ~ ' where target_photos.photo_id = ' ~ target ~ ' limit 1)'
        ) }} as dist
    from {{ ref('photos') }} as candidates
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
