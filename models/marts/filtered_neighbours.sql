{{ config(materialized='parameterized_view') }}

{%- set photo_id = query_parameter('photo_id', 'String') %}
{%- set k = query_parameter('k', 'UInt32') %}
{%- set keyword = query_parameter('keyword', 'String') %}
{%- set colour = query_parameter('colour', 'String') %}
{%- set country = query_parameter('country', 'String') %}
{%- set photographer = query_parameter('photographer', 'String') %}
{%- set date_from = query_parameter('date_from', 'String') %}
{%- set date_to = query_parameter('date_to', 'String') %}
{%- set min_downloads = query_parameter('min_downloads', 'UInt64') %}

-- The k photos nearest to a photo among those that pass metadata filters,
-- asked by BI tools with every parameter given ('' or 0: no filter):
--     select * from analytics.filtered_neighbours(photo_id = '…', k = 10,
--         keyword = 'beach', colour = '', country = '', photographer = '',
--         date_from = '2020-01-01', date_to = '', min_downloads = 0)
-- Dates are 'YYYY-MM-DD', both ends included. The filters are applied first
-- and the photos that pass are searched exactly, so a filter that keeps few
-- photos still yields k rows when k exist (an index search first would
-- return the k nearest overall and then keep only those that pass).
-- A photo id that is not in the store gets no rows (as in `neighbours`).

with

{{ target_embedding_alias(ref('photos'), photo_id) }},

final as (
    select
        {{ photo_id }} as target_photo_id,
        candidates.photo_id as photo_id,
        candidates.photo_image_url as photo_image_url,
        {{ picture_url('candidates.photo_id', 'candidates.photo_image_url') }} as picture_url,
        toFloat64({{ vector_distance('candidates.photo_embed', 'target_embed') }}) as dist,
        toUInt32(row_number() over (order by dist asc, candidates.photo_id asc)) as rank
    from {{ ref('photos') }} as candidates
    where
        candidates.photo_id != {{ photo_id }}
        and {{ target_found() }}
        and candidates.photo_id in (
            select photo_filters.photo_id
            from {{ ref('photo_attributes') }} as photo_filters
            where
                ({{ keyword }} = '' or has(photo_filters.keywords, lower(trim({{ keyword }}))))
                and ({{ colour }} = '' or has(photo_filters.colours, lower(trim({{ colour }}))))
                and ({{ country }} = '' or lower(photo_filters.country) = lower(trim({{ country }})))
                and ({{ photographer }} = '' or photo_filters.photographer = trim({{ photographer }}))
                and (
                    {{ date_from }} = ''
                    or toDate32(photo_filters.submitted_at)
                    >= toDate32(if({{ date_from }} = '', '1900-01-01', {{ date_from }}))
                )
                and (
                    {{ date_to }} = ''
                    or toDate32(photo_filters.submitted_at)
                    <= toDate32(if({{ date_to }} = '', '2299-12-31', {{ date_to }}))
                )
                and photo_filters.downloads >= {{ min_downloads }}
        )
    order by rank
    limit {{ k }}
    settings vector_search_filter_strategy = 'prefilter'
)

select * from final
