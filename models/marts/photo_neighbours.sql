{{
    config(
        materialized='nearest_neighbours',
        k=int_var('neighbours_k', 1, 1000),
        id_column='photo_id',
        vector_column='photo_embed',
        method=var('neighbours_method'),
        recall=float_var('neighbours_recall', 0.5, 1),
        enabled=(target.type == 'chdb'),
    )
}}

{#- The search grows with the square of the photos (the approximate one by a
    smaller factor): refused before any work above `neighbours_max_photos`
    rather than left running for hours. -#}
{%- if execute -%}
    {%- set max_photos = int_var('neighbours_max_photos', 1, 1000000000) -%}
    {%- set photos = run_query('select count() from ' ~ ref('photos')).columns[0].values()[0] | int -%}
    {%- if photos > max_photos -%}
        {{ exceptions.raise_compiler_error(
            photos ~ " photos exceed neighbours_max_photos (" ~ max_photos ~ "): the search of every"
            ~ " photo's neighbours grows with the square of the photos; raise the var to run it anyway"
            ~ " or leave the model out (dbt build --exclude photo_neighbours+)") }}
    {%- endif -%}
{%- endif %}

-- The photos whose neighbours are kept: the materialization reads these rows
-- and writes (photo_id, neighbour_id, rank, dist) for every one of them.

with

photos as (
    select
        photo_id,
        photo_embed
    from {{ ref('photos') }}
),

final as (
    select
        photo_id,
        photo_embed
    from photos
)

select * from final
