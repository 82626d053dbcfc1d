{{ config(store_failures=true) }}

-- A text search embedded by another text model than the CLIP model's own
-- text tower is comparable with the photos only when that text model was
-- trained into the CLIP model's space (the seed text_model_fits). One row per
-- saved search that was not.

with

saved as (
    select
        name,
        model,
        text_model
    from {{ ref('stg_search_queries') }}
    where kind = 'text'
),

fits as (
    select
        text_model,
        image_model
    from {{ ref('text_model_fits') }}
)

select
    saved.name as query_name,
    saved.text_model as text_model,
    saved.model as model,
    concat(
        'saved search ''', saved.name, ''' was embedded by text model ', saved.text_model,
        ', which seeds/text_model_fits.csv does not list for ', saved.model,
        '; save it again with a text model that fits, or without --text-model'
    ) as problem
from saved
left anti join fits
    on
        saved.text_model = fits.text_model
        and saved.model = fits.image_model
where saved.text_model != saved.model
