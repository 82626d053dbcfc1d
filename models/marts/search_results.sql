{{ config(order_by='(query_name, rank)', query_settings=vector_search_settings()) }}

-- depends_on: {{ ref('stg_search_queries') }}
-- depends_on: {{ ref('photos') }}

{#- One index search per saved query: the vector index answers
    `order by dist limit k` over the photos table, one query vector at a time. -#}
{%- set k = int_var('top_k', 1, 100000) %}
{%- set names = [] %}
{%- if execute %}
    {%- for row in run_query("select name from " ~ ref('stg_search_queries') ~ " order by name").rows %}
        {%- do names.append(row[0]) %}
    {%- endfor %}
{%- endif %}

with

{% for name in names -%}
    search_{{ loop.index }} as (
        select
            {{ sql_string(name) }} as query_name,
            candidates.photo_id,
            candidates.photo_image_url,
            {{ vector_distance(
                'candidates.photo_embed',
                '(select saved.embedding from ' ~ ref('stg_search_queries') ~ ' as saved where saved.name = '
                ~ sql_string(name) ~ ' limit 1)'
            ) }} as dist
        from {{ ref('photos') }} as candidates
        order by dist asc
        -- deleted photos still in the index are skipped after the search: fetch as many more
        limit {{ k }} + {{ deleted_rows_slack(ref('photos'), k) }}
    ),

{% endfor -%}
hits as (
    {%- for name in names %}
        select
            query_name,
            photo_id,
            photo_image_url,
            dist
        from search_{{ loop.index }}
        union all
    {%- endfor %}
    -- typed and empty: the shape of the mart when no search is saved
    select
        '' as query_name,
        '' as photo_id,
        '' as photo_image_url,
        toFloat32(0) as dist
    where 0
),

downloads_per_photo as (
    select
        stg_conversions.photo_id,
        count() as downloads
    from {{ ref('stg_conversions') }} as stg_conversions
    where stg_conversions.photo_id in (select hits.photo_id from hits)
    group by stg_conversions.photo_id
),

ranked as (
    select
        hits.query_name as query_name,
        toUInt32(row_number() over (partition by hits.query_name order by hits.dist asc, hits.photo_id asc)) as rank,
        hits.photo_id as photo_id,
        hits.photo_image_url as photo_image_url,
        {{ picture_url('hits.photo_id', 'hits.photo_image_url') }} as picture_url,
        toFloat64(hits.dist) as dist,
        toUInt64(coalesce(downloads_per_photo.downloads, 0)) as downloads
    from hits
    left join downloads_per_photo
        on hits.photo_id = downloads_per_photo.photo_id
),

final as (
    select
        query_name,
        rank,
        photo_id,
        photo_image_url,
        picture_url,
        dist,
        downloads
    from ranked
    where rank <= {{ k }}
)

select * from final
