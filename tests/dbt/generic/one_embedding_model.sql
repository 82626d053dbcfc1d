{#- One row per embedding model when `model` holds embeddings of more than one
    model: distances between them mean nothing, so every photo (and every saved
    search) must come from one model.  The rows are stored (store_failures) for
    `dbt test` to point at. -#}
{% test one_embedding_model(model, column_name) %}
{{ config(store_failures=true) }}

with

per_model as (
    select
        {{ column_name }} as embed_model,
        count() as photos
    from {{ model }}
    group by embed_model
),

models as (
    select count() as n from per_model
)

select
    per_model.embed_model,
    per_model.photos,
    concat(
        toString(models.n), ' embedding models in {{ model.identifier }}; ',
        'load the photos of one model again (python -m seeds_loader DIR)'
    ) as problem
from per_model
cross join models
where models.n > 1

{% endtest %}
