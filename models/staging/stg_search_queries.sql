-- raw.search_queries is created (empty) by seeds_loader and filled by
-- `python -m python_embed query`; FINAL keeps the newest row of each name.
-- Tables made before searches recorded their text model lack text_model:
-- their text searches were embedded by the CLIP model's own text tower.

{%- set columns = present_columns(source('raw', 'search_queries')) %}

with

source as (
    select
        name,
        kind,
        query,
        model,
        embedding,
        saved_at,
        {% if 'text_model' in columns -%}
            text_model
        {%- else -%}
            '' as text_model
        {%- endif %}
    from {{ source('raw', 'search_queries') }} final
),

final as (
    select
        name,
        kind,
        query,
        model,
        if(kind = 'text' and text_model = '', model, text_model) as text_model,
        embedding,
        saved_at
    from source
)

select * from final
