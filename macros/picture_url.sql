{#- A URL a browser can load for a photo, for BI tools that show pictures: the
    photo's own URL when it is on the web, else the thumbnail `bildsuche serve
    --pictures DIR` hands out at /photos/<photo_id>.jpg (var `picture_base_url`:
    where BI users' browsers reach serve) for photos stored as local files. -#}
{#- startsWith, not match(…, '^https?://'): no regular expression compiled per query. -#}
{% macro picture_url(photo_id, image_url) -%}
    if(
        startsWith({{ image_url }}, 'https://') or startsWith({{ image_url }}, 'http://'),
        {{ image_url }},
        concat({{ sql_string(var('picture_base_url')) }}, '/photos/', encodeURLComponent({{ photo_id }}), '.jpg')
    )
{%- endmacro %}

{#- Models that need the embedded (chdb) adapter are disabled on other
    targets: say so at the start of every run there, rather than leave them
    out without a word. `models`: their names. -#}
{% macro note_embedded_only(models) -%}
    {%- if execute and target.type != 'chdb' -%}
        {{ log(
            "bildsuche: " ~ (models | join(', ')) ~ " need the embedded adapter (target type chdb)"
            ~ " and are skipped on target type '" ~ target.type ~ "'; tables of an earlier embedded run keep"
            ~ " their rows", info=True) }}
    {%- endif -%}
    {{ return('') }}
{%- endmacro %}
