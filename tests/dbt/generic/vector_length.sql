{#- Rows whose vector is empty or differs in length from the others: from `dim`
    when given, else from the first vector of `like` (column `like_column`),
    else from the model's own first vector. One model, one dimension: the data
    records it, and saved searches must match the photos' (`like`). -#}
{% test vector_length(model, column_name, dim=none, like=none, like_column='photo_embed') %}
    {%- if dim is not none -%}
        {%- set expected = dim | int -%}
    {%- elif like is not none -%}
        {%- set expected = '(select length(' ~ like_column ~ ') from ' ~ like ~ ' limit 1)' -%}
    {%- else -%}
        {%- set expected = '(select length(' ~ column_name ~ ') from ' ~ model ~ ' limit 1)' -%}
    {%- endif %}

select
    length({{ column_name }}) as vector_length
from {{ model }}
where length({{ column_name }}) = 0 or length({{ column_name }}) != {{ expected }}

{% endtest %}
