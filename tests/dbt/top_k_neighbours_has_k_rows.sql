-- top_k_neighbours holds exactly K rows (fewer only when the store has no more
-- photos besides the target), ranked 1..n without gaps.

with

neighbours as (
    select rank from {{ ref('top_k_neighbours') }}
),

photos as (
    select count() as n from {{ ref('photos') }}
),

expected as (
    select least(toUInt64({{ int_var('top_k', 1, 100000) }}), photos.n - 1) as n from photos
),

actual as (
    select
        count() as n,
        min(rank) as first_rank,
        max(rank) as last_rank,
        uniqExact(rank) as distinct_ranks
    from neighbours
)

select
    actual.n as actual_rows,
    expected.n as expected_rows
from actual
cross join expected
where
    actual.n != expected.n
    or (actual.n > 0 and (actual.first_rank != 1 or actual.last_rank != actual.n or actual.distinct_ranks != actual.n))
