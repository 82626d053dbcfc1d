{{
    config(
        materialized=(
            'table' if target.type == 'myscale'
            else 'distributed_incremental' if cluster_name()
            else 'incremental'
        ),
        incremental_strategy='delete_insert',
        unique_key='photo_id',
        order_by='photo_id',
        partition_by='generation',
        settings=photos_table_settings(),
        query_settings=({} if target.type == 'myscale' else {'lightweight_delete_mode': 'lightweight_update_force'}),
        pre_hook="{{ photos_before_increment(this, ref('stg_photos')) }}",
        post_hook=[
            "{{ vector_index(this, 'photo_embed') }}",
            "{{ photos_after_increment(this) }}",
        ],
    )
}}

-- Small granules: a re-scored index search (vector_search_with_rescoring)
-- reads every granule that holds a candidate, and at 2 KiB per vector the
-- default granules hold about 5,000 rows each, so 11 candidates meant reading
-- most of the table. 32 rows a granule (64 KiB): re-scored top-10 at 25k
-- took 5.7 ms against 8.5 ms with 256 and 24 ms with the default
-- (benchmarks/granules.py, docs/benchmarks.md).
--
-- Incremental (dbt-clickhouse's delete_insert strategy): a run inserts the
-- photos that are new or whose row changed (content_hash), after deleting the
-- old rows of changed photos; the pre-hook deletes photos gone from
-- stg_photos. Only the inserted part gets a new HNSW graph; generations and
-- merges: macros/incremental_photos.sql. `dbt build --full-refresh` rebuilds
-- the table and its whole index.
--
-- On a cluster (macros/cluster.sql) the rows go to per-shard tables, each with
-- its own index, behind a Distributed table named `photos`, sharded by
-- photo_id; the SQL below is the same.

{%- set generation = photos_generation(this) %}

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
        embed_model,
        cityHash64(id, photo_image_url, photo_embed, embed_model) as content_hash,
        toUInt32({{ generation }}) as generation
    from photos
),

-- every photo on a full build; new photos, and photos whose row differs from
-- the stored one, on an incremental run
changed as (
    select *
    from final
    {%- if is_incremental() %}
        where (photo_id, content_hash) not in (
                select
                    stored.photo_id,
                    stored.content_hash
                from {{ this }} as stored
            )
    {%- endif %}
)

select * from changed
