{#
    Dialect differences of vector search, dispatched on the adapter type:
    chdb__ -> clickhouse__ (chDB is a child of the ClickHouse adapter) -> default__.
    MyScale gets its own type (`myscale`) so its MSTG index and status table apply.
#}

{% macro vector_index(relation, column, name='photo_embed_idx') -%}
    {{ return(adapter.dispatch('vector_index', 'bildsuche')(relation, column, name)) }}
{%- endmacro %}

{% macro default__vector_index(relation, column, name) -%}
    {{ exceptions.raise_compiler_error("bildsuche has no vector index for adapter '" ~ adapter.type() ~ "'") }}
{%- endmacro %}

{#- HNSW index over the whole table (GRANULARITY 100000000 keeps one index per part).
        Parts inserted once the index exists get theirs on insert; it is materialized
        only in partitions holding a part without it (a full build's first
        partition), so an incremental run builds no graph twice. Runs its own
        statements (ClickHouse takes one statement per request) and leaves no hook SQL. -#}
{% macro clickhouse__vector_index(relation, column, name) -%}
    {%- set params = [
            "'hnsw'", "'cosineDistance'", bildsuche.embedding_dim(relation, column),
            bildsuche.sql_string(var('hnsw_quantization')),
            bildsuche.int_var('hnsw_m', 2, 1024),
            bildsuche.int_var('hnsw_ef_construction', 2, 65536)] -%}
    {#- On a cluster the index belongs to every shard's local table: each shard's graph holds its photos. -#}
    {%- set table = bildsuche.local_table(relation) -%}
    {%- if execute -%}
        {% do run_query(
            "alter table " ~ table ~ bildsuche.on_cluster() ~ " add index if not exists " ~ adapter.quote(name)
            ~ " " ~ adapter.quote(column)
            ~ " type vector_similarity(" ~ params | join(", ") ~ ") granularity 100000000") %}
        {%- set unindexed = run_query(
            "select distinct partition_id from " ~ bildsuche.system_table('parts')
            ~ " where database = " ~ bildsuche.sql_string(table.schema)
            ~ " and table = " ~ bildsuche.sql_string(table.identifier)
            ~ " and active and rows > 0 and not startsWith(partition_id, 'patch-')"
            ~ " and secondary_indices_compressed_bytes = 0 order by partition_id") -%}
        {%- for row in unindexed.rows %}
            {% do run_query(
                "alter table " ~ table ~ bildsuche.on_cluster() ~ " materialize index " ~ adapter.quote(name)
                ~ " in partition id " ~ bildsuche.sql_string(row[0]) ~ " settings mutations_sync = 2") %}
        {%- endfor %}
    {%- endif -%}
{%- endmacro %}

{% macro myscale__vector_index(relation, column, name) -%}
    {%- if execute -%}
        {% do run_query(
            "alter table " ~ relation ~ " add vector index " ~ adapter.quote(name)
            ~ " " ~ adapter.quote(column) ~ " type MSTG('metric_type=Cosine')") %}
    {%- endif -%}
{%- endmacro %}


{#- The length of the vectors in `column` of `relation`, read from its first row:
        the data records its dimension (0 while dbt parses). -#}
{% macro embedding_dim(relation, column='photo_embed') -%}
    {%- if not execute -%}
        {{ return(0) }}
    {%- endif -%}
    {%- set found = run_query(
            "select length(" ~ adapter.quote(column) ~ ") from " ~ relation ~ " limit 1") -%}
    {%- if found.rows | length == 0 or (found.columns[0].values()[0] | int) == 0 -%}
        {{ exceptions.raise_compiler_error(
            "no vectors in " ~ relation ~ "." ~ column ~ " to take their dimension from: load photos first") }}
    {%- endif -%}
    {{ return(found.columns[0].values()[0] | int) }}
{%- endmacro %}


{#- Cosine distance (1 - cos) between two array expressions. -#}
{% macro vector_distance(left, right) -%}
    {{ return(adapter.dispatch('vector_distance', 'bildsuche')(left, right)) }}
{%- endmacro %}

{% macro default__vector_distance(left, right) -%}
    cosineDistance({{ left }}, {{ right }})
{%- endmacro %}

{% macro myscale__vector_distance(left, right) -%}
    distance({{ left }}, {{ right }})
{%- endmacro %}


{#- A query returning one row per vector index of `relation`:
        index_name, index_type, status ('built' when every part holds the index). -#}
{% macro vector_index_status(relation) -%}
    {{ return(adapter.dispatch('vector_index_status', 'bildsuche')(relation)) }}
{%- endmacro %}

{#- On a cluster: the local tables' index on every replica of every shard. -#}
{% macro clickhouse__vector_index_status(relation) -%}
    {%- set table = bildsuche.local_table(relation) -%}
    {%- set db = bildsuche.sql_string(table.schema) -%}
    {%- set tbl = bildsuche.sql_string(table.identifier) -%}
    select
            idx.name as index_name,
            idx.type as index_type,
            multiIf(
                    mut.pending > 0, 'building',
                    prt.parts_indexed < prt.parts_total, 'partial',
                    'built'
            ) as status,
            prt.parts_total as parts_total,
            prt.parts_indexed as parts_indexed
    from (
            select distinct name, type
            from {{ bildsuche.system_table('data_skipping_indices') }}
            where database = {{ db }} and table = {{ tbl }} and type = 'vector_similarity'
    ) as idx
    cross join (
            select
                    count() as parts_total,
                    countIf(secondary_indices_compressed_bytes > 0) as parts_indexed
            from {{ bildsuche.system_table('parts') }}
            where
                    database = {{ db }} and table = {{ tbl }} and active and rows > 0
                    -- patch parts (rows deleted by lightweight DELETE) carry no data to index
                    and not startsWith(partition_id, 'patch-')
    ) as prt
    cross join (
            select count() as pending
            from {{ bildsuche.system_table('mutations') }}
            where database = {{ db }} and table = {{ tbl }} and not is_done
    ) as mut
{%- endmacro %}

{% macro myscale__vector_index_status(relation) -%}
    select
            name as index_name,
            type as index_type,
            if(status = 'Built', 'built', lower(status)) as status,
            toUInt64(0) as parts_total,
            toUInt64(0) as parts_indexed
    from system.vector_indices
    where database = {{ bildsuche.sql_string(relation.schema) }}
        and table = {{ bildsuche.sql_string(relation.identifier) }}
{%- endmacro %}


{#- A SQL function `distance` on ClickHouse/chDB, so MyScale-style queries
        (`order by distance(photo_embed, [...]) limit k`) run unchanged. -#}
{% macro define_distance_function() -%}
    {{ return(adapter.dispatch('define_distance_function', 'bildsuche')()) }}
{%- endmacro %}

{#- On a cluster every node gets it: BI tools may ask any of them. -#}
{% macro clickhouse__define_distance_function() -%}
    create function if not exists distance{{ bildsuche.on_cluster() }} as (a, b) -> cosineDistance(a, b)
{%- endmacro %}

{% macro myscale__define_distance_function() -%}
{%- endmacro %}


{#- Query settings of vector searches: on ClickHouse/chDB, distances are
    recomputed from the stored float32 vectors (the index holds bf16 copies),
    and the index search keeps `hnsw_ef_search` candidates. -#}
{% macro vector_search_settings() -%}
    {{ return(adapter.dispatch('vector_search_settings', 'bildsuche')()) }}
{%- endmacro %}

{% macro default__vector_search_settings() -%}
    {{ return({}) }}
{%- endmacro %}

{% macro clickhouse__vector_search_settings() -%}
    {{ return({
        'vector_search_with_rescoring': 1,
        'hnsw_candidate_list_size_for_search': bildsuche.int_var('hnsw_ef_search', 1, 100000),
    }) }}
{%- endmacro %}
