{#-
    The on-run-start hook of a plain dbt build, run, seed or snapshot (a user's CI, an analytics
    engineer): it stops before any node while a racemap command holds this database's run lock
    (racemap/runtime.py LOCK_KEYS, two int4 keys "rcmp" and 1), in one line naming that command.
    dbt takes no lock of its own: its build dropped and rebuilt the marts under a running
    `racemap run`, which then failed at `changes`. dbt cannot hold the lock itself (its hooks'
    connection is closed before the nodes run, and each thread has its own), so this is a check
    at the start: a racemap started after it waits on nothing, and a build is best kept apart
    from racemap's schedule. racemap's own dbt commands (RACEMAP_DBT_INVOCATION, set by
    racemap.mapping.dbt while racemap holds the lock) pass.
-#}
{% macro racemap_lock_guard() %}
    {%- if execute and flags.WHICH in ('build', 'run', 'seed', 'snapshot')
        and env_var('RACEMAP_DBT_INVOCATION', '') == '' -%}
    {%- set holder -%}
        {#- Another role's session shows no application_name nor backend_start without
            pg_read_all_stats: the line names its pid alone. -#}
        select
            coalesce(nullif(a.application_name, ''), 'a racemap command')
            || ' (pid ' || l.pid
            || coalesce(', started ' || to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS TZ'), '')
            || ')'
        from pg_locks as l
        left join pg_stat_activity as a on l.pid = a.pid
        where
            l.locktype = 'advisory' and l.granted
            and l.classid = 1919118704 and l.objid = 1 and l.objsubid = 2
            and l.database = (select oid from pg_database where datname = current_database())
    {%- endset -%}
    {%- set rows = run_query(holder).rows -%}
    {%- if rows | length > 0 -%}
        {{ exceptions.raise_compiler_error(
            rows[0][0] ~ ' holds database ' ~ target.dbname
            ~ ': nothing was built; run dbt again when it has finished') }}
    {%- endif -%}
    {%- endif -%}
{% endmacro %}
