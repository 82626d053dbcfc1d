{#- Rows whose embedding is not L2-normalised (cosine distance assumes it). -#}
{% test unit_norm(model, column_name, tolerance=none) %}
    {%- set tol = tolerance if tolerance is not none else float_var('norm_tolerance', 0, 1) %}

select
    L2Norm({{ column_name }}) as norm
from {{ model }}
where not isFinite(norm) or abs(norm - 1) > {{ tol | float }}

{% endtest %}
