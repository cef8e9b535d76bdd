{#-
    The relations dbt-postgres caches for a schema, without SQL functions. Since dbt 1.11 the
    adapter lists a schema's functions too, so racemap's lookup function racemap.race_laps()
    (create_lookup_functions) would be taken for the table of the same name: dbt would rename
    the "existing" race_laps to back it up, and fail. This project defines no dbt functions;
    its relations are tables (ordinary or partitioned), views and materialized views.
-#}
{% macro postgres__list_relations_without_caching(schema_relation) %}
    {#- The names as string literals: a schema named by the races_schema var is user input. -#}
    {%- set database = schema_relation.database | string | replace("'", "''") -%}
    {%- set schema = schema_relation.schema | string | replace("'", "''") -%}
    {% call statement('list_relations_without_caching', fetch_result=True) -%}
        select
            '{{ database }}' as database,
            c.relname as name,
            n.nspname as schema,
            case c.relkind
                when 'v' then 'view'
                when 'm' then 'materialized_view'
                else 'table'
            end as type
        from pg_class as c
        inner join pg_namespace as n on c.relnamespace = n.oid
        where
            n.nspname ilike '{{ schema }}'
            and c.relkind in ('r', 'p', 'v', 'm')
    {%- endcall %}
    {{ return(load_result('list_relations_without_caching').table) }}
{% endmacro %}
