-- Warns when photos deleted since the last full build (lightweight DELETE:
-- masked, still in the graph of their part) pass `photos_max_deleted_share`
-- of generation 0. Later generations are merged by the nightly run itself;
-- generation 0 only by `dbt build --full-refresh`, whose cost is a first
-- build's (docs/benchmarks.md). Index searches fetch at most k extra
-- candidates to step over deleted photos, so many of them near one another
-- can leave a search short.
{{ config(severity='warn') }}

with

layout as (
    {{ generation_layout(ref('photos')) }}
),

final as (
    select
        generation,
        data_rows,
        deleted_rows,
        concat(
            toString(deleted_rows), ' of ', toString(data_rows), ' photos of generation 0 deleted since the last',
            ' full build; rebuild with dbt build --full-refresh --select photos+'
        ) as problem
    from layout
    where generation = '0' and deleted_rows > {{ float_var('photos_max_deleted_share', 0, 1) }} * data_rows
)

select * from final
