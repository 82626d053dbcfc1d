{#- Rows whose `column_name` is NULL, NaN, or outside [min_value, max_value]
    (either bound may be left out). -#}
{% test value_between(model, column_name, min_value=none, max_value=none) %}
    {%- set conditions = [column_name ~ ' is null', 'isNaN(toFloat64(' ~ column_name ~ '))'] %}
    {%- if min_value is not none %}{% do conditions.append(column_name ~ ' < ' ~ min_value) %}{% endif %}
    {%- if max_value is not none %}{% do conditions.append(column_name ~ ' > ' ~ max_value) %}{% endif %}

select
    {{ column_name }} as value
from {{ model }}
where {{ conditions | join(' or ') }}

{% endtest %}
