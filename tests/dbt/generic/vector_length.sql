{#- Rows whose embedding does not have the model's dimension. -#}
{% test vector_length(model, column_name, dim=none) %}
    {%- set expected = dim if dim is not none else int_var('embedding_dim', 1, 16384) %}

select
    length({{ column_name }}) as vector_length
from {{ model }}
where length({{ column_name }}) != {{ expected | int }}

{% endtest %}
