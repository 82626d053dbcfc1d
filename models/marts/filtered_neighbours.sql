{{ config(materialized='parameterized_view') }}

{%- set photo_id = query_parameter('photo_id', 'String') %}
{%- set k = query_parameter('k', 'UInt32') %}
{%- set keyword = query_parameter('keyword', 'String') %}
{%- set colour = query_parameter('colour', 'String') %}
{%- set country = query_parameter('country', 'String') %}
{%- set photographer = query_parameter('photographer', 'String') %}
{%- set date_from = query_parameter('date_from', 'String') %}
{%- set date_to = query_parameter('date_to', 'String') %}
{%- set min_downloads = query_parameter('min_downloads', 'UInt64') %}
{%- set overfetch = float_var('filtered_overfetch', 1, 1000) %}
{%- set max_candidates = int_var('filtered_max_candidates', 1, 100000) %}
{%- set share_sample = int_var('filtered_share_sample', 100, 100000000) %}

{#- Whether a row of photo_attributes (alias photo_filters) passes every filter. -#}
{%- set passes_filters -%}
    ({{ keyword }} = '' or has(photo_filters.keywords, lower(trim({{ keyword }}))))
    and ({{ colour }} = '' or has(photo_filters.colours, lower(trim({{ colour }}))))
    and ({{ country }} = '' or lower(photo_filters.country) = lower(trim({{ country }})))
    and ({{ photographer }} = '' or photo_filters.photographer = trim({{ photographer }}))
    and (
        {{ date_from }} = ''
        or toDate32(photo_filters.submitted_at) >= toDate32(if({{ date_from }} = '', '1900-01-01', {{ date_from }}))
    )
    and (
        {{ date_to }} = ''
        or toDate32(photo_filters.submitted_at) <= toDate32(if({{ date_to }} = '', '2299-12-31', {{ date_to }}))
    )
    and photo_filters.downloads >= {{ min_downloads }}
{%- endset %}

-- The k photos nearest to a photo among those that pass metadata filters,
-- asked by BI tools with every parameter given ('' or 0: no filter):
--     select * from analytics.filtered_neighbours(photo_id = '…', k = 10,
--         keyword = 'beach', colour = '', country = '', photographer = '',
--         date_from = '2020-01-01', date_to = '', min_downloads = 0)
-- Dates are 'YYYY-MM-DD', both ends included. A photo id that is not in the
-- store gets no rows (as in `neighbours`).
--
-- The search is chosen by the share of photos that pass (estimated first, from
-- the first `filtered_share_sample` photos by id):
-- - a large share: the vector index fetches the nearest photos, enough of
--   them that `filtered_overfetch` times k + 1 are expected to pass, and the
--   filters are checked on those candidates alone;
-- - a small share (more candidates needed than `filtered_max_candidates`,
--   the most an index search answers: the engine's
--   max_limit_for_vector_search_queries), or an index search that left
--   fewer than k passing photos: exact search among the photos that pass.
-- So k rows come back whenever k photos pass, exact for rare filters and at
-- the cost of one index search for frequent ones (docs/benchmarks.md,
-- "Filtered top-K"). The engine ignores SETTINGS inside a view's
-- subqueries, so no strategy setting is relied on: the ranking sorts a
-- subquery, a shape the index never answers.

with

{{ target_embedding_alias(ref('photos'), photo_id) }},

-- the share of photos that pass, estimated from the first `filtered_share_sample`
-- photos by id (ids are unrelated to the metadata): a cost that does not grow
-- with the collection, where counting every photo that passes cost a full scan
-- each time the engine ran this subquery (2 to 4 times a query)
(
    select countIf({{ passes_filters }}) / greatest(count(), 1)
    from (
        select *
        from {{ ref('photo_attributes') }}
        order by photo_id
        limit {{ share_sample }}
    ) as photo_filters
) as passing_share,

-- nearest photos to fetch so that about overfetch × (k + 1) of them pass
-- (none passed in the sample: counted as half a photo, so a rare filter asks for
-- more candidates than an index search is let fetch at the default sizes)
toUInt64(ceil(
    ({{ k }} + 1) * {{ overfetch }} / greatest(passing_share, 0.5 / {{ share_sample }})
)) + {{ deleted_rows_slack(ref('photos'), k) }} as wanted_candidates,

wanted_candidates <= {{ max_candidates }} as by_index,

-- the nearest photos by the index that pass the filters: the index search is a
-- set inside this one scalar, and the scalar is named by one select alone
-- below (the engine runs a scalar subquery again in every select that names
-- it, and the index search is most of a query's time)
(
    select groupArray(photo_filters.photo_id)
    from {{ ref('photo_attributes') }} as photo_filters
    where
        -- a set from a subquery: the primary key then picks the candidates' granules
        photo_filters.photo_id in (
            select fetched.photo_id
            from (
                select
                    candidates.photo_id as photo_id,
                    {{ vector_distance('candidates.photo_embed', 'target_embed') }} as dist
                from {{ ref('photos') }} as candidates
                where by_index
                order by dist asc
                limit wanted_candidates
            ) as fetched
        )
        and {{ passes_filters }}
) as passing_ids,

-- too few passed: the exact search answers instead
length(arrayFilter(passing_id -> passing_id != {{ photo_id }}, passing_ids)) < {{ k }} as index_fell_short,

by_index and not index_fell_short as answered_by_index,

-- the photos to rank: those the index found and that pass, or every photo that
-- passes; their vectors read by primary key, distances exact. Sorting a
-- subquery is a shape the vector index never answers.
nearest as (
    select
        photo_id,
        photo_image_url,
        dist
    from (
        select
            candidates.photo_id as photo_id,
            candidates.photo_image_url as photo_image_url,
            {{ vector_distance('candidates.photo_embed', 'target_embed') }} as dist
        from {{ ref('photos') }} as candidates
        where candidates.photo_id in (
            select photo_filters.photo_id
            from {{ ref('photo_attributes') }} as photo_filters
            where
                has(passing_ids, photo_filters.photo_id)
                or (not answered_by_index and {{ passes_filters }})
        )
    ) as passing
    order by dist asc
    limit {{ k }} + 1
)

{{ ranked_neighbours('nearest', photo_id, k, target_found()) }}
