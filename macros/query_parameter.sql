{#- A query parameter placeholder, `{name:Type}`, bound when the view is
    queried (ClickHouse parameterized views; MyScale shares the syntax). -#}
{% macro query_parameter(name, type) -%}
    {{ return(adapter.dispatch('query_parameter', 'bildsuche')(name, type)) }}
{%- endmacro %}

{% macro default__query_parameter(name, type) -%}
    {{ return('{' ~ name ~ ':' ~ type ~ '}') }}
{%- endmacro %}
