{{ config(enabled=(target.type == 'chdb')) }}

-- A suggestion is a keyword the photo lacks: rows are suggestions of a
-- keyword it was already downloaded under, or is tagged with.

with

suggestions as (
    select
        photo_id,
        keyword
    from {{ ref('keyword_suggestions') }}
),

own_keywords as (
    select
        photo_id,
        keyword
    from {{ ref('stg_conversions') }}
    union distinct
    select
        photo_id,
        keyword
    from {{ ref('stg_photo_tags') }}
)

select
    suggestions.photo_id,
    suggestions.keyword
from suggestions
inner join own_keywords
    on
        suggestions.photo_id = own_keywords.photo_id
        and suggestions.keyword = own_keywords.keyword
