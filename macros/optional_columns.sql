{#- Columns that only some data sets carry (Unsplash Lite's photo metadata,
    its keywords and colors tables): the names present in `relation`,
    lowercased, or an empty list when the table does not exist. -#}
{% macro present_columns(relation) -%}
    {%- if not execute -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set found = adapter.get_relation(relation.database, relation.schema, relation.identifier) -%}
    {%- if found is none -%}
        {{ return([]) }}
    {%- endif -%}
    {{ return(adapter.get_columns_in_relation(found) | map(attribute='name') | map('lower') | list) }}
{%- endmacro %}

{#- `name` as text when `columns` has it, else a typed NULL. -#}
{% macro optional_text(columns, name) -%}
    {%- if name in columns -%}
        nullIf(trim(toString({{ adapter.quote(name) }})), '')
    {%- else -%}
        cast(null as Nullable(String))
    {%- endif -%}
{%- endmacro %}
