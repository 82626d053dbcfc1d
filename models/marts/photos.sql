{{
    config(
        materialized='table',
        engine='MergeTree()',
        order_by='photo_id',
        post_hook="{{ vector_index(this, 'photo_embed') }}",
    )
}}

with

photos as (
    select
        id,
        photo_id,
        photo_image_url,
        photo_embed,
        embed_model
    from {{ ref('stg_photos') }}
),

final as (
    select
        id,
        photo_id,
        photo_image_url,
        photo_embed,
        embed_model
    from photos
)

select * from final
