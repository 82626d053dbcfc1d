{{ config(enabled=(target.type == 'chdb')) }}

-- Every photo has min(neighbours_k, photos - 1) neighbours ranked 1.. without
-- gaps, never itself; rows returned are the photos that break this.

{%- set k = int_var('neighbours_k', 1, 1000) %}

with

photos as (
    select photo_id
    from {{ ref('photos') }}
),

expected as (
    select least({{ k }}, (select count() from photos) - 1) as per_photo
),

lists as (
    select
        photo_id,
        count() as neighbours,
        max(rank) as last_rank,
        countIf(neighbour_id = photo_id) as self_pairs
    from {{ ref('photo_neighbours') }}
    group by photo_id
),

final as (
    select
        photos.photo_id as photo_id,
        coalesce(lists.neighbours, 0) as neighbours,
        lists.last_rank as last_rank,
        lists.self_pairs as self_pairs
    from photos
    left join lists on photos.photo_id = lists.photo_id
    cross join expected
    where
        coalesce(lists.neighbours, 0) != expected.per_photo
        or lists.last_rank != expected.per_photo
        or lists.self_pairs > 0
)

select * from final
