-- Keywords attached to photos (Unsplash Lite's keywords table), lowercased;
-- empty when the data set has no such table.

{%- set columns = present_columns(source('raw', 'keywords')) %}

{% if 'keyword' in columns %}
    with

    source as (
        select
            photo_id,
            keyword
        from {{ source('raw', 'keywords') }}
    ),

    final as (
        select distinct
            photo_id,
            lower(trim(keyword)) as keyword
        from source
        where keyword is not null and trim(keyword) != ''
    )

    select * from final
{% else %}
    select
        '' as photo_id,
        '' as keyword
    where 0
{% endif %}
