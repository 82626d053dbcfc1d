-- The target photo is never its own neighbour, and all rows share one target.

with

neighbours as (
    select
        target_photo_id,
        photo_id
    from {{ ref('top_k_neighbours') }}
),

first_target as (
    select any(neighbours.target_photo_id) as target_photo_id
    from neighbours
)

select
    neighbours.target_photo_id,
    neighbours.photo_id
from neighbours
cross join first_target
where
    neighbours.photo_id = neighbours.target_photo_id
    or neighbours.target_photo_id != first_target.target_photo_id
