{#- The store on a ClickHouse cluster: the `clickhouse` target with the
    profile's `cluster` set (CLICKHOUSE_CLUSTER, profiles.yml).  docs/scale-out.md
    tells the whole story; in short:
    - photos, conversions and the marts keyed by photo_id are per-shard local
      tables (`<name>_local`, ReplicatedMergeTree, created ON CLUSTER) behind a
      Distributed table of the model's own name, sharded by
      cityHash64(photo_id): a photo's row, its raw row and its downloads live on
      one shard, and the models' SQL, which names the Distributed tables, is the
      SQL a single server runs;
    - the photos' local tables carry the vector index, so each shard's graph
      answers for its photos and the initiator merges the shards' `limit k`;
    - small reference tables (seeds) are replicated to every node;
    - every DDL statement of the project's own macros goes ON CLUSTER to the
      local tables, and reads of engine state (system.parts, mutations, indices)
      gather every node's.
    Without a cluster every macro here gives the single-server text unchanged. -#}

{#- The cluster's name, or '' for a single server (and for chDB and MyScale). -#}
{% macro cluster_name() -%}
    {%- if target.type != 'clickhouse' -%}
        {{ return('') }}
    {%- endif -%}
    {{ return((target.get('cluster') or '') | trim) }}
{%- endmacro %}

{% macro on_cluster() -%}
    {%- set name = bildsuche.cluster_name() -%}
    {%- if name %} on cluster {{ adapter.quote(name) }}{% endif -%}
{%- endmacro %}

{#- The table that holds the rows of `relation` on each server: its local
    table on a cluster (dbt-clickhouse's local suffix), itself on one server. -#}
{% macro local_table(relation) -%}
    {%- if not bildsuche.cluster_name() -%}
        {{ return(relation) }}
    {%- endif -%}
    {{ return(relation.incorporate(path={'identifier': relation.identifier ~ adapter.get_clickhouse_local_suffix()})) }}
{%- endmacro %}

{#- A system table as seen by every server of the cluster (each replica's
    own: parts, mutations, indices), or by one replica of each shard
    (`one_replica`: rows counted once), or the server's own. -#}
{% macro system_table(name, one_replica=false) -%}
    {%- set cluster = bildsuche.cluster_name() -%}
    {%- if not cluster -%}
        {{ return('system.' ~ name) }}
    {%- endif -%}
    {{ return(('cluster' if one_replica else 'clusterAllReplicas') ~ '(' ~ bildsuche.sql_string(cluster)
        ~ ', system.' ~ name ~ ')') }}
{%- endmacro %}
