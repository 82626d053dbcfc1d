-- raw.search_queries is created (empty) by seeds_loader and filled by
-- `python -m python_embed query`; FINAL keeps the newest row of each name.

with

source as (
    select
        name,
        kind,
        query,
        model,
        embedding,
        saved_at
    from {{ source('raw', 'search_queries') }} final
),

final as (
    select
        name,
        kind,
        query,
        model,
        embedding,
        saved_at
    from source
)

select * from final
