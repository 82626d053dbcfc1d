{{ config(enabled=(target.type == 'chdb')) }}

-- Every photo's suggestions are ranked 1..n without gaps, one keyword once,
-- the better score first: rows are the photos that break this.

with

suggestions as (
    select
        photo_id,
        keyword,
        score,
        rank
    from {{ ref('keyword_suggestions') }}
),

per_photo as (
    select
        photo_id,
        count() as suggestions,
        uniqExact(keyword) as keywords,
        min(rank) as first_rank,
        max(rank) as last_rank,
        arrayMap(pair -> pair.2, arraySort(groupArray((rank, score)))) as scores_by_rank
    from suggestions
    group by photo_id
)

select
    photo_id,
    suggestions,
    keywords,
    first_rank,
    last_rank,
    scores_by_rank
from per_photo
where
    keywords != suggestions
    or first_rank != 1
    or last_rank != suggestions
    or scores_by_rank != arrayReverseSort(scores_by_rank)
