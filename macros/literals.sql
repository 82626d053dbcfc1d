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
    {%- set value = var(name) | string | trim | float(default=none) -%}
    {%- if value is none or not (value >= low and value <= high) -%}
        {%- set message = "var '" ~ name ~ "' must be a number from " ~ low ~ " to " ~ high
            ~ ", got " ~ (var(name) | tojson) -%}
        {{ exceptions.raise_compiler_error(message) }}
    {%- endif -%}
    {{- return(value) -}}
{%- endmacro %}

{#- A 'YYYY-MM-DD' var as a quoted literal, or '' when the var is empty. -#}
{% macro date_var(name) -%}
    {%- set raw = (var(name) or '') | string | trim -%}
    {%- set parts = raw.split('-') -%}
    {%- if raw != '' and not (raw | length == 10 and parts | length == 3
            and parts[0].isdigit() and parts[1].isdigit() and parts[2].isdigit()
            and (parts[1] | int) >= 1 and (parts[1] | int) <= 12
            and (parts[2] | int) >= 1 and (parts[2] | int) <= 31) -%}
        {{ exceptions.raise_compiler_error(
            "var '" ~ name ~ "' must be a date YYYY-MM-DD or empty, got " ~ (var(name) | tojson)) }}
    {%- endif -%}
    {{- return(bildsuche.sql_string(raw)) -}}
{%- endmacro %}

{#- A number of nearest photos to read from photo_neighbours: 1 to `neighbours_k`,
    the neighbours it keeps of every photo; empty (the default) means all of them,
    so that a lower neighbours_k needs no other var changed. -#}
{% macro neighbours_var(name) -%}
    {%- set neighbours_k = bildsuche.int_var('neighbours_k', 1, 1000) -%}
    {%- if (var(name) | string | trim) in ('', 'None') -%}
        {{- return(neighbours_k) -}}
    {%- endif -%}
    {%- set value = bildsuche.int_var(name, 1, 1000) -%}
    {%- if value > neighbours_k -%}
        {{ exceptions.raise_compiler_error(
            "var '" ~ name ~ "' (" ~ value ~ ") exceeds neighbours_k (" ~ neighbours_k
            ~ "), the neighbours photo_neighbours keeps of every photo; raise neighbours_k too") }}
    {%- endif -%}
    {{- return(value) -}}
{%- endmacro %}
