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
        outgoing.photo_id,
        outgoing.neighbour_id as duplicate_id,
        outgoing.dist
    from neighbours as outgoing
    union all
    -- qualified: an unqualified photo_id would name the alias just defined
    select
        incoming.neighbour_id as photo_id,
        incoming.photo_id as duplicate_id,
        incoming.dist
    from neighbours as incoming
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
