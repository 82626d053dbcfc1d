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
-- most of the table. 32 rows a granule (64 KiB): re-scored top-10 at 25k
-- took 5.7 ms against 8.5 ms with 256 and 24 ms with the default
-- (benchmarks/granules.py, docs/benchmarks.md).

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
