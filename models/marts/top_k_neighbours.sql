{{ config(materialized='table', order_by='rank', query_settings=vector_search_settings()) }}

{%- set target = target_photo_literal(ref('photos')) %}
{%- set k = int_var('top_k', 1, 100000) %}

-- The tutorial's top-K question for one target, kept as a table: the
-- parameterized view `neighbours` holds the vector-index search itself, so BI
-- tools asking live and this mart give the same answer.

with

neighbours as (
    select
        target_photo_id,
        photo_id,
        photo_image_url,
        dist,
        rank
    from {{ ref('neighbours') }}(photo_id = {{ target }}, k = {{ k }})
),

final as (
    select
        target_photo_id,
        photo_id,
        photo_image_url,
        dist,
        rank
    from neighbours
)

select * from final
