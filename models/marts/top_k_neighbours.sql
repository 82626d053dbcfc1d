{{ config(order_by='rank', query_settings=vector_search_settings()) }}

{%- set target = target_photo_literal(ref('photos')) %}
{%- set k = int_var('top_k', 1, 100000) %}
{%- set filters = neighbour_filters() %}

-- The tutorial's top-K question for one target, kept as a table. The
-- parameterized views hold the searches themselves, so BI tools asking live
-- and this mart give the same answer: `neighbours` (vector index) without
-- filters, `filtered_neighbours` (the index for filters that keep many
-- photos, exact search among the photos that pass otherwise) when any
-- `filter_*` var is set.

with

neighbours as (
    select
        target_photo_id,
        photo_id,
        photo_image_url,
        picture_url,
        dist,
        rank
    {%- if filters.active %}
        from {{ ref('filtered_neighbours') }}(
            photo_id = {{ target }},
            k = {{ k }},
            {{ filters.arguments }}
        )
    {%- else %}
        from {{ ref('neighbours') }}(photo_id = {{ target }}, k = {{ k }})
    {%- endif %}
),

final as (
    select
        target_photo_id,
        photo_id,
        photo_image_url,
        picture_url,
        dist,
        rank
    from neighbours
)

select * from final
