{{ config(severity='warn') }}

-- keyword_search_relevance covers the keywords `bildsuche keywords` embedded.
-- A warning per frequent keyword (at least `relevance_min_searches`
-- downloads) that the photos' model has not embedded: run `bildsuche
-- keywords --limit N` (it embeds the 200 most searched by default).

{%- set min_searches = int_var('relevance_min_searches', 1, 1000000000) %}

with

frequent as (
    select
        keyword,
        count() as searches
    from {{ ref('stg_conversions') }}
    where keyword != ''
    group by keyword
    having searches >= {{ min_searches }}
),

embedded as (
    select keyword
    from {{ ref('stg_keyword_embeddings') }}
    where model in (select photos.embed_model from {{ ref('photos') }} as photos)
)

select
    frequent.keyword,
    frequent.searches
from frequent
left anti join embedded on frequent.keyword = embedded.keyword
