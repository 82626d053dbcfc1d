-- Photo metadata for filters. Unsplash Lite's photos table carries these
-- columns (as text); other data sets lack some or all, which become NULL.

{%- set columns = present_columns(source('raw', 'photos')) %}

with

source as (
    select
        photo_id,
        {{ optional_text(columns, 'photographer_username') }} as photographer_username,
        {{ optional_text(columns, 'photo_location_country') }} as photo_location_country,
        {{ optional_text(columns, 'photo_submitted_at') }} as photo_submitted_at,
        {{ optional_text(columns, 'stats_downloads') }} as stats_downloads
    from {{ source('raw', 'photos') }}
),

final as (
    select
        photo_id,
        photographer_username as photographer,
        photo_location_country as country,
        parseDateTime64BestEffortOrNull(photo_submitted_at, 3, 'UTC') as submitted_at,
        toUInt64OrNull(stats_downloads) as stats_downloads
    from source
)

select * from final
