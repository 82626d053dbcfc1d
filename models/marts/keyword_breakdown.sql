{{ config(order_by='downloads') }}

{%- set n = int_var('top_keywords', 1, 100000) %}

with

candidates as (
    select
        photo_id,
        rank,
        downloads
    from {{ ref('conversions_per_candidate') }}
),

-- The tutorial's "most downloaded candidate"; ties go to the nearer photo.
top_candidate as (
    select photo_id
    from candidates
    where downloads > 0
    order by downloads desc, rank asc
    limit 1
),

conversions as (
    select
        stg_conversions.photo_id,
        stg_conversions.keyword
    from {{ ref('stg_conversions') }} as stg_conversions
    where stg_conversions.photo_id in (select top_candidate.photo_id from top_candidate)
),

final as (
    select
        photo_id,
        keyword,
        count() as downloads
    from conversions
    group by photo_id, keyword
    order by downloads desc, keyword asc
    limit {{ n }}
)

select * from final
