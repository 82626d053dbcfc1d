{#- One row when `model` and `compare_model` hold different numbers of rows. -#}
{% test row_count_equals(model, compare_model) %}

with

actual as (
    select count() as n from {{ model }}
),

expected as (
    select count() as n from {{ compare_model }}
)

select
    actual.n as actual_rows,
    expected.n as expected_rows
from actual
cross join expected
where actual.n != expected.n

{% endtest %}
