with

source as (
    select
        id,
        photo_id,
        photo_image_url,
        photo_embed
    from {{ source('raw', 'photos') }}
),

final as (
    select
        id,
        photo_id,
        photo_image_url,
        photo_embed
    from source
)

select * from final
