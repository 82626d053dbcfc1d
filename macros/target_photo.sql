{#- The target photo of the neighbour marts, as a quoted literal.
        `target_photo_id` names it; left empty, a photo is drawn from `photos_relation`
        by a seeded hash, so the same data and `target_seed` give the same target.
        A named photo that is not in the store stops the run with a clear error. -#}
{% macro target_photo_literal(photos_relation) -%}
    {%- if not execute -%}
        {{ return("''") }}
    {%- endif -%}
    {%- set requested = var('target_photo_id') -%}
    {%- if requested is none or (requested | string | trim) == '' -%}
        {%- set seed = bildsuche.int_var('target_seed', 0, 18446744073709551615) -%}
        {%- set drawn = run_query(
                "select photo_id from " ~ photos_relation
                ~ " order by sipHash64(photo_id, " ~ seed ~ "), photo_id limit 1") -%}
        {%- if drawn.rows | length == 0 -%}
            {{ exceptions.raise_compiler_error(
                "no photos in " ~ photos_relation ~ ": load some with seeds_loader first") }}
        {%- endif -%}
        {{ return(bildsuche.sql_string(drawn.columns[0].values()[0])) }}
    {%- endif -%}
    {%- set literal = bildsuche.sql_string(requested) -%}
    {%- set found = run_query("select count() from " ~ photos_relation ~ " where photo_id = " ~ literal) -%}
    {%- if found.columns[0].values()[0] | int == 0 -%}
        {{ exceptions.raise_compiler_error(
            "target_photo_id " ~ (requested | string | tojson) ~ " is not a photo in " ~ photos_relation) }}
    {%- endif -%}
    {{ return(literal) }}
{%- endmacro %}

{#- The `filter_*` vars as the named arguments of `filtered_neighbours`, one
        text (quoted literals and checked integers), and whether any filter is set. -#}
{% macro neighbour_filters() -%}
    {%- set filters = {
        'keyword': bildsuche.sql_string(var('filter_keyword') or ''),
        'colour': bildsuche.sql_string(var('filter_colour') or ''),
        'country': bildsuche.sql_string(var('filter_country') or ''),
        'photographer': bildsuche.sql_string(var('filter_photographer') or ''),
        'date_from': bildsuche.date_var('filter_date_from'),
        'date_to': bildsuche.date_var('filter_date_to'),
        'min_downloads': bildsuche.int_var('filter_min_downloads', 0, 18446744073709551615),
    } -%}
    {%- set active = filters.values() | select('ne', "''") | select('ne', 0) | list | length > 0 -%}
    {%- set arguments = [] -%}
    {%- for name, value in filters.items() -%}
        {%- do arguments.append(name ~ ' = ' ~ value) -%}
    {%- endfor -%}
    {{ return({'arguments': arguments | join(', '), 'active': active}) }}
{%- endmacro %}

{#- A scalar subquery: the embedding of photo `photo_id` (an SQL expression) in
        `photos_relation`. A photo id that is not there gets some other photo's
        embedding as a stand-in, since a scalar subquery of no row fails the whole
        query; the neighbour views then return no rows for it. -#}
{% macro photo_embedding_of(photos_relation, photo_id) -%}
(select target_vectors.photo_embed from (
    (select target_photos.photo_embed, 0 as stand_in from {{ photos_relation }} as target_photos
        where target_photos.photo_id = {{ photo_id }} limit 1)
    union all
    (select any_photo.photo_embed, 1 as stand_in from {{ photos_relation }} as any_photo limit 1)
) as target_vectors order by target_vectors.stand_in limit 1)
{%- endmacro %}
