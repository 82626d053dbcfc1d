{{ config(order_by='keyword', sharding_key='cityHash64(keyword)') }}

{%- set k = int_var('relevance_k', 1, 10000) %}
{%- set min_searches = int_var('relevance_min_searches', 1, 1000000000) %}

-- How well a text search for each frequent search keyword would serve the
-- users who searched for it: the keyword, embedded once by the photos' CLIP
-- text tower (stg_keyword_embeddings), is compared with every photo (exact
-- cosine distance), and the photos actually downloaded after searching for it
-- are looked up among its `relevance_k` nearest. recall_at_k: the share of
-- those photos found there; mrr: the mean of 1/rank over the downloads (each
-- download one search), 0 beyond `relevance_k`. Keywords with fewer than
-- `relevance_min_searches` downloads, or not embedded by the photos' model,
-- are left out.

with

photos as (
    select
        photo_id,
        photo_embed,
        embed_model
    from {{ ref('photos') }}
),

conversions as (
    select
        photo_id,
        keyword
    from {{ ref('stg_conversions') }}
    where keyword != ''
),

keyword_embeddings as (
    select
        model,
        keyword,
        embedding
    from {{ ref('stg_keyword_embeddings') }}
),

searches_per_keyword as (
    select
        keyword,
        count() as searches,
        uniqExact(photo_id) as downloaded_photos
    from conversions
    group by keyword
    having searches >= {{ min_searches }}
),

queries as (
    select
        keyword_embeddings.keyword as keyword,
        keyword_embeddings.model as model,
        keyword_embeddings.embedding as embedding
    from keyword_embeddings
    inner join searches_per_keyword on keyword_embeddings.keyword = searches_per_keyword.keyword
    where keyword_embeddings.model in (select photos.embed_model from photos)
),

-- Every keyword against every photo, keeping each keyword's k nearest
-- (ties by photo_id): a partial sort per keyword, where ranking all photos
-- of every keyword with a window function took minutes at 25k photos and
-- 1,000 keywords (docs/insights.md).
nearest as (
    select
        queries.keyword as keyword,
        groupArraySorted({{ k }})(  -- noqa: LT01
            ({{ vector_distance('photos.photo_embed', 'queries.embedding') }}, photos.photo_id)
        ) as hits
    from photos
    cross join queries
    group by queries.keyword
),

ranking as (
    select
        keyword,
        hit.2 as photo_id,
        search_rank
    from nearest
    array join
        hits as hit,
        arrayEnumerate(hits) as search_rank
),

downloads as (
    select
        keyword,
        photo_id,
        count() as downloads
    from conversions
    where keyword in (select queries.keyword from queries)
    group by keyword, photo_id
),

-- search_rank 0: not among the k nearest
downloaded_ranks as (
    select
        downloads.keyword as keyword,
        downloads.photo_id as photo_id,
        downloads.downloads as downloads,
        ranking.search_rank as search_rank
    from downloads
    left join ranking
        on
            downloads.keyword = ranking.keyword
            and downloads.photo_id = ranking.photo_id
),

per_keyword as (
    select
        keyword,
        countIf(search_rank > 0) as found_photos,
        sumIf(downloads / search_rank, search_rank > 0) as reciprocal_ranks,
        minIf(search_rank, search_rank > 0) as best_rank
    from downloaded_ranks
    group by keyword
),

final as (
    select
        searches_per_keyword.keyword as keyword,
        queries.model as model,
        toUInt64(searches_per_keyword.searches) as searches,
        toUInt64(searches_per_keyword.downloaded_photos) as downloaded_photos,
        toUInt64(per_keyword.found_photos) as found_photos,
        toUInt32({{ k }}) as k,
        toFloat64(per_keyword.found_photos / searches_per_keyword.downloaded_photos) as recall_at_k,
        toFloat64(per_keyword.reciprocal_ranks / searches_per_keyword.searches) as mrr,
        if(per_keyword.found_photos > 0, toUInt32(per_keyword.best_rank), null) as best_rank
    from searches_per_keyword
    inner join queries on searches_per_keyword.keyword = queries.keyword
    inner join per_keyword on searches_per_keyword.keyword = per_keyword.keyword
)

select * from final
