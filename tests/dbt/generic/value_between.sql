{#- Rows whose `column_name` is NaN, outside [min_value, max_value] (either
    bound may be left out), or NULL unless `allow_null`. -#}
{% test value_between(model, column_name, min_value=none, max_value=none, allow_null=false) %}
    {%- set conditions = ['isNaN(toFloat64(' ~ column_name ~ '))'] %}
    {%- if not allow_null %}{% do conditions.append(column_name ~ ' is null') %}{% endif %}
    {%- if min_value is not none %}{% do conditions.append(column_name ~ ' < ' ~ min_value) %}{% endif %}
    {%- if max_value is not none %}{% do conditions.append(column_name ~ ' > ' ~ max_value) %}{% endif %}

select
    {{ column_name }} as value
from {{ model }}
where {{ conditions | join(' or ') }}

{% endtest %}
