{#- raw.photos tables loaded before seeds_loader recorded the embedding model
    have no embed_model column: their photos read as 'unknown', which the
    embedding model tests report until the photos are loaded again. -#}
{%- set raw_photos = source('raw', 'photos') %}
{%- set has_model = execute and 'embed_model' in (
    adapter.get_columns_in_relation(raw_photos) | map(attribute='name') | list
) %}

with

source as (
    select
        id,
        photo_id,
        photo_image_url,
        photo_embed,
        {% if has_model -%}
            embed_model
        {%- else -%}
            'unknown' as embed_model
        {%- endif %}
    from {{ raw_photos }}
),

final as (
    select
        id,
        photo_id,
        photo_image_url,
        photo_embed,
        embed_model
    from source
)

select * from final
