{{ config(order_by='(photo_id, dist)', enabled=(target.type == 'chdb')) }}

{%- set threshold = float_var('near_duplicate_threshold', 0, 2) %}

-- Pairs of photos nearer than `near_duplicate_threshold` (cosine distance):
-- copies, resized or recompressed versions, bursts of the same scene. Both
-- directions are listed, so `where photo_id = …` finds every duplicate of a
-- photo; a photo's duplicates are looked for among its `neighbours_k` nearest.

with

neighbours as (
    select
        photo_id,
        neighbour_id,
        dist
    from {{ ref('photo_neighbours') }}
    where dist <= {{ threshold }}
),

pairs as (
    select
        photo_id,
        neighbour_id as duplicate_id,
        dist
    from neighbours
    union all
    select
        neighbour_id as photo_id,
        photo_id as duplicate_id,
        dist
    from neighbours
),

final as (
    select
        photo_id,
        duplicate_id,
        toFloat64(min(dist)) as dist
    from pairs
    group by photo_id, duplicate_id
)

select * from final
