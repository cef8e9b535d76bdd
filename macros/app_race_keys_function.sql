{#-
    The pre-hook of stg_app__race_keys: a function reading the keys of the application's races
    table live, which the view selects from. The application's table is named in the function's
    body, a string PostgreSQL does not track: no view depends on the table or its columns, so
    the application can drop, retype (an id from integer to bigint) or recreate them between
    runs. A plain SQL function, inlined by the planner into the query that reads the view. The
    body names schema and table, not the database: a copy of the database (created from it as a
    template, or restored under another name) reads its own table.
-#}
{% macro app_race_keys_function() -%}
    {%- set body -%}
        select
            cast({{ adapter.quote(var('race_id_column')) }} as text),
            cast(openf1_meeting_key as integer),
            cast(openf1_session_key as integer)
        from {{ source('app', 'races').include(database=false) }}
    {%- endset -%}
    {%- if '$racemap$' in body -%}
        {{ exceptions.raise_compiler_error("a races table or column name holds '$racemap$'") }}
    {%- endif -%}
    create or replace function {{ this.schema }}.app_race_keys()
    returns table (race_id text, current_meeting_key integer, current_session_key integer)
    language sql stable
    as $racemap${{ body }}$racemap$
{%- endmacro %}
