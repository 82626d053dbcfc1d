-- Search keywords embedded by the CLIP text tower (`bildsuche keywords`),
-- one row per model and keyword (FINAL keeps the newest); empty when nothing
-- was embedded yet.

{%- set columns = present_columns(source('raw', 'keyword_embeddings')) %}

{% if 'embedding' in columns %}
    with

    source as (
        select
            model,
            keyword,
            embedding,
            embedded_at
        from {{ source('raw', 'keyword_embeddings') }} final
    ),

    final as (
        select
            model,
            keyword,
            embedding,
            embedded_at
        from source
    )

    select * from final
{% else %}
    select
        '' as model,
        '' as keyword,
        cast([] as Array(Float32)) as embedding,
        toDateTime64(0, 3) as embedded_at
    where 0
{% endif %}
