-- top_k_neighbours holds exactly K rows (fewer only when the store, or with
-- `filter_*` vars the photos that pass them, has no more photos besides the
-- target), ranked 1..n without gaps.

-- depends_on: {{ ref('filtered_neighbours') }}
{%- set filters = neighbour_filters() %}

with

neighbours as (
    select rank from {{ ref('top_k_neighbours') }}
),

photos as (
    {%- if filters.active %}
        select count() as n
        from {{ ref('filtered_neighbours') }}(
            photo_id = {{ target_photo_literal(ref('photos')) }},
            k = 4294967295,
            {{ filters.arguments }}
        )
    {%- else %}
        select count() - 1 as n from {{ ref('photos') }}
    {%- endif %}
),

expected as (
    select least(toUInt64({{ int_var('top_k', 1, 100000) }}), photos.n) as n from photos
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
