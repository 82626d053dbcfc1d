{#- The k nearest neighbours of every row the model's SQL selects, refreshed
    incrementally by the adapter: only new or changed rows, and rows that lost
    a neighbour, are searched again (exactly, by a blocked matrix product; see
    dbt/adapters/chdb/neighbours.py). `dbt run --full-refresh` recomputes
    every list.

    config: k (required); id_column ('id') and vector_column ('embedding'):
    the columns of the model's SQL; neighbour_column ('neighbour_id'): the
    column naming each neighbour in the table written; max_rows: refuse more
    rows than this before any work (the search grows with their square);
    method ('exact'): 'exact', 'approximate' (k-means cells, bf16 products,
    float32 re-scoring, at the cheapest setting whose recall@k on a sample of
    rows reaches `recall`, exact where none does) or 'auto' (exact below
    50,000 rows); recall (0.95). -#}
{% materialization nearest_neighbours, adapter='chdb' %}
    {%- set target_relation = this.incorporate(type='table') -%}
    {%- set k = config.require('k') | int -%}
    {{ run_hooks(pre_hooks) }}
    {%- set stats = adapter.nearest_neighbours(
        sql, target_relation, k, should_full_refresh(), config.get('max_rows'),
        config.get('id_column', 'id'), config.get('vector_column', 'embedding'),
        config.get('neighbour_column', 'neighbour_id'), config.get('method', 'exact'),
        config.get('recall', 0.95)) -%}
    {{ log(
        target_relation ~ ": " ~ stats['rows'] ~ " rows, " ~ stats['searched'] ~ " searched, "
        ~ stats['merged'] ~ " lists merged, " ~ stats['kept'] ~ " kept"
        ~ (" (full refresh)" if stats['full'] else "") ~ ", " ~ stats['method']
        ~ (" (" ~ stats['cells'] ~ " cells, " ~ stats['per_group'] ~ " per group" ~ ", recall@k " ~ stats['sample_recall']
           ~ " on a sample)" if stats['method'] == 'approximate' else "")
        ~ " in " ~ stats['seconds'] ~ " s",
        info=True) }}
    {% call statement('main') -%}
        select count() from {{ target_relation }}
    {%- endcall %}
    {{ run_hooks(post_hooks) }}
    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}
