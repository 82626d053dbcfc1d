{#- One row per problem: no vector index on `model`, or one not built on every part. -#}
{% test vector_index_built(model) %}

with

status as (
    {{ vector_index_status(model) }}
),

missing as (
    select
        'missing' as index_name,
        'no vector index' as problem
    from (select count() as n from status)
    where n = 0
),

unbuilt as (
    select
        index_name,
        concat(status, ': ', toString(parts_indexed), ' of ', toString(parts_total), ' parts indexed') as problem
    from status
    where status != 'built'
)

select index_name, problem from missing
union all
select index_name, problem from unbuilt

{% endtest %}
