{#-
    Give the application's races table its two OpenF1 key columns, each unique (the unique
    constraint's index serves lookups). The one-time schema change of `racemap migrate` (as the
    table's owner), or of a run that finds the columns missing where it may migrate (the
    embedded demo, an owner): racemap.pipeline.migrate_races. Runs never ALTER the table once
    the columns exist. Idempotent; by hand:
        dbt run-operation migrate_races --profiles-dir .
-#}
{% macro migrate_races() %}
    {%- set schema = var('races_schema') -%}
    {%- set table = var('races_table') -%}
    {%- set relation = adapter.get_relation(database=target.database, schema=schema, identifier=table) -%}
    {%- if relation is none -%}
        {{ exceptions.raise_compiler_error(
            "races table " ~ schema ~ "." ~ table ~ " does not exist: set the vars races_schema/races_table") }}
    {%- endif -%}
    {#- The relation as a string literal (for regclass): the application's names are user input,
        so single quotes are doubled; the DO block's body is dollar-quoted, so its tag may not
        appear in them. -#}
    {%- set relation_literal = "'" ~ (relation | string | replace("'", "''")) ~ "'" -%}
    {%- if '$migrate$' in (relation | string) -%}
        {{ exceptions.raise_compiler_error("the races table's name holds '$migrate$'") }}
    {%- endif -%}
    {%- for column in ['openf1_meeting_key', 'openf1_session_key'] %}
        {%- set constraint = table ~ '_' ~ column ~ '_key' -%}
        {% call statement('migrate_' ~ column) %}
            alter table {{ relation }} add column if not exists {{ adapter.quote(column) }} integer;
            do $migrate$
            begin
                if not exists (
                    select 1
                    from pg_constraint as c
                    join pg_attribute as a
                        on a.attrelid = c.conrelid and a.attnum = any(c.conkey)
                    where c.conrelid = {{ relation_literal }}::regclass
                      and c.contype = 'u'
                      and array_length(c.conkey, 1) = 1
                      and a.attname = '{{ column }}'
                ) then
                    alter table {{ relation }}
                        add constraint {{ adapter.quote(constraint) }} unique ({{ adapter.quote(column) }});
                end if;
            end
            $migrate$;
        {% endcall %}
    {%- endfor %}
    {{ log("migrated " ~ relation ~ ": openf1_meeting_key, openf1_session_key (unique, indexed)", info=True) }}
{% endmacro %}
