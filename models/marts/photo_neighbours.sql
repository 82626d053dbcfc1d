{{
    config(
        materialized='nearest_neighbours',
        k=int_var('neighbours_k', 1, 1000),
        max_photos=int_var('neighbours_max_photos', 1, 1000000000),
        enabled=(target.type == 'chdb'),
    )
}}

-- The photos whose neighbours are kept: the materialization reads these rows
-- and writes (photo_id, neighbour_id, rank, dist) for every one of them.

with

photos as (
    select
        photo_id,
        photo_embed
    from {{ ref('photos') }}
),

final as (
    select
        photo_id,
        photo_embed
    from photos
)

select * from final
