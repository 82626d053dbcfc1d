{#- How analytics.photos grows night by night on ClickHouse/chDB (the photos model).

    The engine keeps one HNSW graph per part and rebuilds it whenever it
    merges parts or rewrites one, so the layout keeps the big graph still:
    - rows of the last full build are generation 0 (a partition of its own),
      rows of later runs go to the open generation (1, 2, ...), a partition
      each; a generation is sealed once it holds `photos_generation_share` of
      the photos (at least `photos_generation_min_rows`), and later rows open
      the next one;
    - no background merges (max_bytes_to_merge_at_max_space_in_pool is 1 MiB,
      so only patch parts and tiny parts ever merge on their own); the nightly
      run merges the open generation when it holds more than
      `photos_generation_parts` parts, and any later generation whose deleted
      rows pass `photos_max_deleted_share`, with OPTIMIZE ... FINAL of that
      partition: the graph rebuilt is that generation's, never generation 0's;
    - every part is wide (a file per column; the default makes parts under
      10 MB compact): a delete then writes a row mask beside the part's files
      and keeps its graph as a hard link, where a compact part is rewritten
      whole, graph included (7 s for 20,000 vectors);
    - removed and replaced photos are deleted as patch parts (lightweight
      DELETE in `lightweight_update` mode): dbt-clickhouse's delete_insert
      deletes the keys of the new rows on every run, and with none that costs
      nothing, where the default mode mutates every part all the same; the
      run then applies the patches to the parts it touched (APPLY PATCHES:
      the masks written, the graphs kept), so no search joins them (7.2 ms
      against 9.5 to 10 ms per top-10 with 200 deleted rows at 100k);
    - a deleted photo stays in its part's graph: index searches fetch as many
      more candidates (`deleted_rows_slack`), so that deleted ones do not cut
      them short.
    docs/benchmarks.md ("Nightly runs") has the measurements behind each number. -#}

{% macro photos_table_settings() -%}
    {{ return(adapter.dispatch('photos_table_settings', 'bildsuche')()) }}
{%- endmacro %}

{% macro default__photos_table_settings() -%}
    {{ return({'index_granularity': 32}) }}
{%- endmacro %}

{% macro myscale__photos_table_settings() -%}
    {{ return({'index_granularity': 32}) }}
{%- endmacro %}

{#- On a cluster the shards' tables are replicated, and a replicated table drops an
    insert whose blocks it has seen before: a night that brings back a photo's earlier row
    after the delete of its current one would lose the photo, so no block is deduplicated. -#}
{% macro clickhouse__photos_table_settings() -%}
    {%- set settings = {
        'index_granularity': 32,
        'enable_block_number_column': 1,
        'enable_block_offset_column': 1,
        'max_bytes_to_merge_at_max_space_in_pool': 1048576,
        'min_bytes_for_wide_part': 0,
    } -%}
    {%- if bildsuche.cluster_name() -%}
        {%- do settings.update({'replicated_deduplication_window': 0}) -%}
    {%- endif -%}
    {{ return(settings) }}
{%- endmacro %}


{#- The generation the rows of this run go to: 0 on a full build, else the open
    generation, or a new one when the open one is full. -#}
{% macro photos_generation(relation) -%}
    {%- if not execute or not is_incremental() -%}
        {{ return(0) }}
    {%- endif -%}
    {%- set share = bildsuche.float_var('photos_generation_share', 0, 1) -%}
    {%- set min_rows = bildsuche.int_var('photos_generation_min_rows', 1, 1000000000) -%}
    {%- set found = run_query(
            "select generation, count() from " ~ relation ~ " group by generation order by generation") -%}
    {%- set total = found.columns[1].values() | sum -%}
    {%- set open = (found.columns[0].values() | last) if found.rows | length else 0 -%}
    {%- set open_rows = (found.columns[1].values() | last) if found.rows | length else 0 -%}
    {%- if open == 0 or open_rows >= [share * total, min_rows] | max -%}
        {{ return(open + 1) }}
    {%- endif -%}
    {{ return(open) }}
{%- endmacro %}


{#- Pre-hook of an incremental run: refuse photos of another model or dimension,
    drop what killed runs left, delete the photos that left the source. -#}
{#- On a cluster the tables of killed runs are on every node (created ON CLUSTER)
    and rows are deleted from the shards' local tables. -#}
{% macro photos_before_increment(relation, source) -%}
    {%- if execute and is_incremental() -%}
        {%- do bildsuche.refuse_other_embeddings(relation, source) -%}
        {%- for row in run_query(
                "select name from system.tables where database = " ~ bildsuche.sql_string(relation.schema)
                ~ " and startsWith(name, " ~ bildsuche.sql_string(relation.identifier ~ '__dbt_new_data_') ~ ")").rows -%}
            {%- do run_query("drop table if exists " ~ relation.incorporate(path={'identifier': row[0]})
                ~ bildsuche.on_cluster()) -%}
        {%- endfor -%}
        {%- set gone = "photo_id not in (select photo_id from " ~ source ~ ")" -%}
        {%- if run_query("select count() from " ~ relation ~ " where " ~ gone).columns[0].values()[0] > 0 -%}
            {%- do run_query("delete from " ~ bildsuche.local_table(relation) ~ bildsuche.on_cluster() ~ " where "
                ~ gone ~ " " ~ bildsuche.delete_settings()) -%}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{% macro delete_settings() -%}
    {{ return(adapter.dispatch('delete_settings', 'bildsuche')()) }}
{%- endmacro %}

{% macro default__delete_settings() -%}
{%- endmacro %}

{#- Patch parts (see the top of this file): applied to the parts by the post-hook. -#}
{% macro clickhouse__delete_settings() -%}
    settings lightweight_delete_mode = 'lightweight_update_force'
{%- endmacro %}


{#- One model has one dimension, and distances between two models' vectors mean
    nothing: photos of another model or length go in by a full rebuild only. -#}
{% macro refuse_other_embeddings(relation, source) -%}
    {#- One row of each: reading every vector to learn one length costs seconds at a million. -#}
    {%- set stored = run_query("select embed_model, length(photo_embed) from " ~ relation ~ " limit 1").rows -%}
    {%- set incoming = run_query("select embed_model, length(photo_embed) from " ~ source ~ " limit 1").rows -%}
    {%- if stored | length == 0 or incoming | length == 0 -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set stored, incoming = stored[0], incoming[0] -%}
    {%- set models_differ = stored[0] != incoming[0] and 'unknown' not in [stored[0], incoming[0]] -%}
    {%- if models_differ or stored[1] != incoming[1] -%}
        {{ exceptions.raise_compiler_error(
            source ~ " holds photos embedded by " ~ incoming[0] ~ " (" ~ incoming[1] ~ "-d), " ~ relation
            ~ " those of " ~ stored[0] ~ " (" ~ stored[1] ~ "-d): one store holds one model's embeddings;"
            ~ " nothing was changed. Rebuild with `dbt build --full-refresh` to replace them") }}
    {%- endif -%}
{%- endmacro %}


{#- Post-hook of an incremental run: merge the later generations that need it
    (see the top of this file); generation 0 is never merged here. -#}
{% macro photos_after_increment(relation) -%}
    {{ return(adapter.dispatch('photos_after_increment', 'bildsuche')(relation)) }}
{%- endmacro %}

{% macro default__photos_after_increment(relation) -%}
{%- endmacro %}

{% macro clickhouse__photos_after_increment(relation) -%}
    {%- set table = bildsuche.local_table(relation) -%}
    {%- if execute and is_incremental() -%}
        {%- set max_parts = bildsuche.int_var('photos_generation_parts', 1, 1000) -%}
        {%- set max_deleted = bildsuche.float_var('photos_max_deleted_share', 0, 1) -%}
        {%- set deleted_somewhere = [] -%}
        {%- for row in run_query(bildsuche.generation_layout(relation)).rows -%}
            {%- set generation, parts, rows, deleted = row[0], row[1], row[2], row[3] -%}
            {%- set unapplied, is_open = row[4], row[5] -%}
            {%- if generation != '0' and rows > 0
                    and ((is_open and parts > max_parts) or deleted > max_deleted * rows) -%}
                {%- do run_query("optimize table " ~ table ~ bildsuche.on_cluster() ~ " partition id "
                    ~ bildsuche.sql_string(generation) ~ " final") -%}
            {%- elif unapplied -%}
                {%- do deleted_somewhere.append(generation) -%}
            {%- endif -%}
        {%- endfor -%}
        {#- Masks written into the parts (their graphs kept): no patch joined on every read. -#}
        {%- for generation in deleted_somewhere -%}
            {%- do run_query("alter table " ~ table ~ bildsuche.on_cluster() ~ " apply patches in partition id "
                ~ bildsuche.sql_string(generation) ~ " settings mutations_sync = 2") -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}


{#- Per generation of `relation`: its partition id, data parts, rows stored,
    rows deleted but still stored (masked by patch parts or applied masks: the
    rows stored less the rows a query sees), whether a patch part is newer
    than its oldest data part (deletes not yet applied to the parts), and
    whether it is the open (newest) generation.  On a cluster: the parts of one
    replica of every shard (rows counted once), data parts and patches taken
    per shard (the most parts any shard holds). -#}
{% macro generation_layout(relation) -%}
    {%- set table = bildsuche.local_table(relation) -%}
    with

    all_parts as (
        select
            hostName() as host,
            partition_id,
            startsWith(partition_id, 'patch-') as is_patch,
            -- a patch part's partition id is patch-<hash>-<partition id it patches>
            if(is_patch, splitByChar('-', partition_id)[3], partition_id) as generation,
            rows,
            data_version,
            max_block_number
        from {{ bildsuche.system_table('parts', one_replica=true) }}
        where
            database = {{ bildsuche.sql_string(table.schema) }}
            and table = {{ bildsuche.sql_string(table.identifier) }}
            and active
    ),

    shard_parts as (
        select
            host,
            generation,
            countIf(not is_patch and rows > 0) as data_parts,
            sumIf(rows, not is_patch) as stored_rows,
            maxIf(max_block_number, is_patch) > minIf(data_version, not is_patch) as unapplied
        from all_parts
        group by host, generation
        having data_parts > 0
    ),

    parts as (
        select
            generation,
            max(data_parts) as data_parts,
            sum(stored_rows) as stored_rows,
            max(unapplied) as unapplied
        from shard_parts
        group by generation
    ),

    visible as (
        select
            toString(generation) as generation,
            count() as visible_rows
        from {{ relation }}
        group by generation
    )

    select
        parts.generation as generation,
        parts.data_parts as data_parts,
        parts.stored_rows as data_rows,
        parts.stored_rows - visible.visible_rows as deleted_rows,
        parts.unapplied as unapplied_deletes,
        toUInt64(parts.generation) = max(toUInt64(parts.generation)) over () as is_open
    from parts
    left join visible on parts.generation = visible.generation
    order by toUInt64(parts.generation)
{%- endmacro %}


{#- Extra candidates an index search of `relation` fetches so that `k` live rows
    remain when deleted rows are among the nearest: as many as the rows deleted
    but still in a part's graph, at most k. Counted when the model using it is
    built (after `photos`, on which it depends, in the same run): a constant in
    the SQL, which a subquery per search (system.parts) would cost 2 to 3 ms. -#}
{% macro deleted_rows_slack(relation, k) -%}
    {{ return(adapter.dispatch('deleted_rows_slack', 'bildsuche')(relation, k)) }}
{%- endmacro %}

{% macro default__deleted_rows_slack(relation, k) -%}
    0
{%- endmacro %}

{% macro clickhouse__deleted_rows_slack(relation, k) -%}
    {%- set deleted = 0 -%}
    {%- if execute -%}
        {%- set deleted = run_query(
                "select toUInt64(sum(deleted_rows)) from (" ~ bildsuche.generation_layout(relation) ~ ")"
            ).columns[0].values()[0] | int -%}
    {%- endif -%}
    least(toUInt64({{ k }}), {{ deleted }})
{%- endmacro %}

{% macro myscale__deleted_rows_slack(relation, k) -%}
    0
{%- endmacro %}


{#- on-run-start: a load killed after it committed has swapped some raw tables
    in and not others (seeds_loader/commit.py); building on them would mix two
    sets, so dbt stops until a load finishes the swap. -#}
{% macro refuse_unfinished_load(raw_schema='raw') -%}
    {%- if execute -%}
        {%- set found = run_query(
                "select count() from system.tables where database = " ~ bildsuche.sql_string(raw_schema)
                ~ " and name = 'load__commit'") -%}
        {%- if found.columns[0].values()[0] > 0 -%}
            {{ exceptions.raise_compiler_error(
                "the raw tables are between two sets: a load was interrupted while it swapped them in;"
                ~ " run `bildsuche load DIR` again to finish it (nothing was built)") }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
