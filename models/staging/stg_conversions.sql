with

source as (
    select
        id,
        photo_id,
        keyword
    from {{ source('raw', 'conversions') }}
),

final as (
    select
        id,
        photo_id,
        lower(trim(keyword)) as keyword
    from source
)

select * from final
