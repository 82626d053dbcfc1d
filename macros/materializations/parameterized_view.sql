{#- A ClickHouse parameterized view: the model's SQL with `{name:Type}`
    placeholders, queried as `select * from view(name = value, ...)`.  dbt's
    own view materialization would introspect the SQL, which cannot run
    without its parameters.  On a cluster every node gets the view (ON CLUSTER);
    it reads the Distributed tables. -#}
{% materialization parameterized_view, adapter='clickhouse' %}
    {%- set target_relation = this.incorporate(type='view') -%}
    {{ run_hooks(pre_hooks) }}
    {% call statement('main') -%}
        create or replace view {{ target_relation }}{{ bildsuche.on_cluster() }} as {{ sql }}
    {%- endcall %}
    {{ run_hooks(post_hooks) }}
    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}
