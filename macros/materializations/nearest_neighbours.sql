{#- The k nearest neighbours of every photo the model's SQL selects
    (columns photo_id, photo_embed), refreshed incrementally by the embedded
    adapter: only new or changed photos, and photos that lost a neighbour, are
    searched again (exactly, by a blocked matrix product; see
    adapter/dbt/adapters/chdb/neighbours.py). `dbt run --full-refresh`
    recomputes every list. -#}
{% materialization nearest_neighbours, adapter='chdb' %}
    {%- set target_relation = this.incorporate(type='table') -%}
    {%- set k = config.require('k') | int -%}
    {%- set max_photos = config.get('max_photos') -%}
    {{ run_hooks(pre_hooks) }}
    {%- set stats = adapter.nearest_neighbours(sql, target_relation, k, should_full_refresh(), max_photos) -%}
    {{ log(
        target_relation ~ ": " ~ stats['photos'] ~ " photos, " ~ stats['searched'] ~ " searched, "
        ~ stats['merged'] ~ " lists merged, " ~ stats['kept'] ~ " kept"
        ~ (" (full refresh)" if stats['full'] else "") ~ " in " ~ stats['seconds'] ~ " s",
        info=True) }}
    {% call statement('main') -%}
        select count() from {{ target_relation }}
    {%- endcall %}
    {{ run_hooks(post_hooks) }}
    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}
