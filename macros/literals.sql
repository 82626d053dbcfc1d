{#- Every user-supplied value reaches SQL through these: a quoted string literal
        or a range-checked integer, never raw text. -#}

{% macro sql_string(value) -%}
    {%- set text = value | string -%}
    {{- return("'" ~ text.replace('\\', '\\\\').replace("'", "\\'") ~ "'") -}}
{%- endmacro %}

{% macro int_var(name, low, high) -%}
    {%- set raw = var(name) | string | trim -%}
    {%- if not raw.isdigit() or (raw | int) < low or (raw | int) > high -%}
        {%- set message = "var '" ~ name ~ "' must be a whole number from " ~ low ~ " to " ~ high
            ~ ", got " ~ (var(name) | tojson) -%}
        {{ exceptions.raise_compiler_error(message) }}
    {%- endif -%}
    {{- return(raw | int) -}}
{%- endmacro %}

{% macro float_var(name, low, high) -%}
    {%- set raw = var(name) | string | trim -%}
    {%- set digits = raw.replace('.', '', 1) -%}
    {%- if not digits.isdigit() or (raw | float) < low or (raw | float) > high -%}
        {%- set message = "var '" ~ name ~ "' must be a number from " ~ low ~ " to " ~ high
            ~ ", got " ~ (var(name) | tojson) -%}
        {{ exceptions.raise_compiler_error(message) }}
    {%- endif -%}
    {{- return(raw | float) -}}
{%- endmacro %}
