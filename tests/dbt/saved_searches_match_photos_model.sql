{{ config(store_failures=true) }}

-- A saved search finds photos by comparing its embedding with theirs, which
-- means something only when one model embedded both.  One row per saved search
-- and photo model that differ (photos loaded after the searches were saved, by
-- another model, or searches saved with another --model).

with

photo_models as (
    select
        embed_model,
        count() as photos
    from {{ ref('stg_photos') }}
    group by embed_model
),

saved as (
    select
        name,
        model
    from {{ ref('stg_search_queries') }}
),

final as (
    select
        saved.name as query_name,
        saved.model as query_model,
        photo_models.embed_model as photos_model,
        photo_models.photos as photos,
        concat(
            'saved search ''', saved.name, ''' was embedded by ', saved.model, ', ',
            toString(photo_models.photos), ' photo(s) by ', photo_models.embed_model, '; ',
            if(
                photo_models.embed_model = 'unknown',
                'load the photos again with seeds_loader --embed-model NAME',
                'save the search again with the photos'' model (python -m python_embed query --model ...)'
            )
        ) as problem
    from saved
    cross join photo_models
    where saved.model != photo_models.embed_model
)

select * from final
