{{ config(order_by='(photo_id, rank)', enabled=(target.type == 'chdb')) }}

{%- set n = neighbours_var('suggestion_neighbours') %}
{%- set m = int_var('suggestions_per_photo', 1, 1000) %}

-- For every photo, the search keywords under which its `suggestion_neighbours`
-- nearest photos were downloaded, each download weighted by how similar that
-- neighbour is (cosine similarity, 1 - dist, never below 0), leaving out the
-- keywords the photo already has: its own search keywords and its tags.

with

neighbours as (
    select
        photo_id,
        neighbour_id,
        greatest(1 - dist, 0) as similarity
    from {{ ref('photo_neighbours') }}
    where rank <= {{ n }}
),

conversions as (
    select
        photo_id,
        keyword
    from {{ ref('stg_conversions') }}
    where keyword != ''
),

tags as (
    select
        photo_id,
        keyword
    from {{ ref('stg_photo_tags') }}
),

downloads_per_keyword as (
    select
        photo_id,
        keyword,
        count() as downloads
    from conversions
    group by photo_id, keyword
),

own_keywords as (
    select
        photo_id,
        keyword
    from conversions
    union distinct
    select
        photo_id,
        keyword
    from tags
),

candidates as (
    select
        neighbours.photo_id as photo_id,
        downloads_per_keyword.keyword as keyword,
        sum(neighbours.similarity * downloads_per_keyword.downloads) as score,
        sum(downloads_per_keyword.downloads) as neighbour_downloads,
        count() as neighbours
    from neighbours
    inner join downloads_per_keyword
        on neighbours.neighbour_id = downloads_per_keyword.photo_id
    group by neighbours.photo_id, downloads_per_keyword.keyword
),

new_keywords as (
    select
        candidates.photo_id,
        candidates.keyword,
        candidates.score,
        candidates.neighbour_downloads,
        candidates.neighbours
    from candidates
    left anti join own_keywords
        on
            candidates.photo_id = own_keywords.photo_id
            and candidates.keyword = own_keywords.keyword
    where candidates.score > 0
),

ranked as (
    select
        photo_id,
        keyword,
        score,
        neighbour_downloads,
        neighbours,
        row_number() over (partition by photo_id order by score desc, keyword asc) as rank
    from new_keywords
),

final as (
    select
        photo_id,
        keyword,
        toFloat64(score) as score,
        toUInt32(rank) as rank,
        toUInt64(neighbour_downloads) as neighbour_downloads,
        toUInt32(neighbours) as neighbours
    from ranked
    where rank <= {{ m }}
)

select * from final
