-- Colour names of photos (the `keyword` of Unsplash Lite's colors table),
-- lowercased; empty when the data set has no such table.

{%- set columns = present_columns(source('raw', 'colors')) %}

{% if 'keyword' in columns %}
    with

    source as (
        select
            photo_id,
            keyword
        from {{ source('raw', 'colors') }}
    ),

    final as (
        select distinct
            photo_id,
            lower(trim(keyword)) as colour
        from source
        where keyword is not null and trim(keyword) != ''
    )

    select * from final
{% else %}
    select
        '' as photo_id,
        '' as colour
    where 0
{% endif %}
