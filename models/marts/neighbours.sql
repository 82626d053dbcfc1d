{{ config(materialized='parameterized_view') }}

{%- set photo_id = query_parameter('photo_id', 'String') %}
{%- set k = query_parameter('k', 'UInt32') %}

-- The k photos nearest to any photo, asked interactively by BI tools:
--     select * from analytics.neighbours(photo_id = '…', k = 10)
-- top_k_neighbours reads it for the dbt vars' target.
--
-- `order by dist limit n` straight over the indexed table is the shape the
-- vector index answers: wrapped in an import CTE, or with a where clause
-- (applied after the index search, leaving fewer than k rows), it is not.
-- So the table is read here directly and the target dropped from k + 1 rows.
-- A photo id that is not in the store gets no rows: zeros stand in for its
-- embedding in the search, and the outer select keeps nothing. Photos deleted
-- since their part was indexed are skipped after the index search, so it
-- fetches as many more candidates (at most k; macros/incremental_photos.sql).
--
-- Two selects and no `final` CTE: every layer of a query costs the engine
-- a fixed part of a millisecond, which is most of what this view adds to the
-- index search (docs/benchmarks.md, "The view's own cost").

with

{{ target_embedding_alias(ref('photos'), photo_id) }},

nearest as (
    select
        candidates.photo_id,
        candidates.photo_image_url,
        {{ vector_distance('candidates.photo_embed', 'target_embed') }} as dist,
        -- here, not in the select below: each select that names the lookup runs it again
        {{ target_found() }} as target_found
    from {{ ref('photos') }} as candidates
    order by dist asc
    -- deleted photos still in the index may be among the nearest: fetch that many more
    limit {{ k }} + 1 + {{ deleted_rows_slack(ref('photos'), k) }}
)

{{ ranked_neighbours('nearest', photo_id, k, 'target_found') }}
