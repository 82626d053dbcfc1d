{{
    config(
        materialized='table',
        engine='MergeTree()',
        order_by='photo_id',
        settings={'index_granularity': 32},
        post_hook="{{ vector_index(this, 'photo_embed') }}",
    )
}}

-- Small granules: a re-scored index search (vector_search_with_rescoring)
-- reads every granule that holds a candidate, and at 2 KiB per vector the
-- default granules hold about 5,000 rows each, so 11 candidates meant reading
-- most of the table. 32 rows a granule (64 KiB): top-10 at 25k took 4.5 ms
-- against 6.4 ms with 256 and about 3x that with the default
-- (docs/benchmarks.md, "small granules for re-scoring").

with

photos as (
    select
        id,
        photo_id,
        photo_image_url,
        photo_embed,
        embed_model
    from {{ ref('stg_photos') }}
),

final as (
    select
        id,
        photo_id,
        photo_image_url,
        photo_embed,
        embed_model
    from photos
)

select * from final
