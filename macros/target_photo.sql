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

{#- `target_embed`, an expression alias for the WITH clause of a neighbour view:
        the embedding of photo `photo_id` (an SQL expression) in `photos_relation`,
        read by one primary-key lookup, or zeros of the embedding length (read
        from `photos_relation`) when the photo is not there (`any` over no row
        gives an empty array where a plain scalar subquery of no row would fail
        the whole query). A constant, so the vector index answers the search;
        resized inside the subquery, so the query carries one 512-float constant
        where a resize outside made a second (docs/benchmarks.md, "The view's own
        cost"). One subquery: two more (a stand-in photo and a count) took the
        view from 9.5 to 12.7 ms at 25k photos. -#}
{% macro target_embedding_alias(photos_relation, photo_id) -%}
    (select arrayResize(any(target_photos.photo_embed), {{ bildsuche.embedding_dim(photos_relation) }})
        from {{ photos_relation }} as target_photos
        where target_photos.photo_id = {{ photo_id }}) as target_embed
{%- endmacro %}

{#- True when the neighbour view's target photo is in the store: its vector is
        not the zeros that stand in for a missing one. (A stored zero vector is
        false too: it has no cosine neighbours, every distance to it is NaN.) -#}
{% macro target_found() -%}
    L2Norm(target_embed) > 0
{%- endmacro %}

{#- The last select of a neighbour view: the k nearest of `source` (a CTE with
        photo_id, photo_image_url and dist) ranked by distance, ties by photo id,
        the target itself left out, and no row at all unless `found` (an SQL
        condition: the target photo is in the store). -#}
{% macro ranked_neighbours(source, photo_id, k, found) -%}
select
    {{ photo_id }} as target_photo_id,
    photo_id,
    photo_image_url,
    {{ bildsuche.picture_url('photo_id', 'photo_image_url') }} as picture_url,
    toFloat64(dist) as dist,
    toUInt32(row_number() over (order by dist asc, photo_id asc)) as rank
from {{ source }}
where
    photo_id != {{ photo_id }}
    and {{ found }}
order by dist asc, photo_id asc
limit {{ k }}
{%- endmacro %}
