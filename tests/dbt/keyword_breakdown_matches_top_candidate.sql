-- keyword_breakdown describes the most downloaded candidate, and its counts add
-- up to no more than that candidate's downloads.

with

top_candidate as (
    select
        photo_id,
        downloads
    from {{ ref('conversions_per_candidate') }}
    where downloads > 0
    order by downloads desc, rank asc
    limit 1
),

breakdown as (
    select
        photo_id,
        sum(downloads) as downloads
    from {{ ref('keyword_breakdown') }}
    group by photo_id
)

select breakdown.photo_id
from breakdown
left join top_candidate
    on breakdown.photo_id = top_candidate.photo_id
where
    top_candidate.photo_id = ''
    or breakdown.downloads > top_candidate.downloads
