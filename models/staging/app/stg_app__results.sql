{#-
    The application's results with the columns named by the result_* vars: one row per car per
    race. The table is optional: when the relation does not exist (or this role cannot read it)
    this is an empty relation of the same columns, and every race's results_check is no_results (racemap says so once).
-#}
-- depends_on: {{ source('app_results', 'results') }}
{#- A table (dbt_project.yml), not a view: a view would hold a dependency on the application's
    table, and the application could no longer alter or drop it between runs. -#}
{%- set results = adapter.get_relation(
    database=target.database,
    schema=var('results_schema'),
    identifier=var('results_table'),
) if execute else none -%}
{#- A table this role may not read is absent too (racemap says so once): the check is optional. -#}
{%- if results is not none -%}
    {%- set privilege = run_query(
        "select has_table_privilege('"
        ~ (results.include(database=false) | string | replace("'", "''"))
        ~ "', 'SELECT')"
    ) -%}
    {%- if not privilege.columns[0].values()[0] -%}
        {%- set results = none -%}
    {%- endif -%}
{%- endif -%}
{%- set driver_column = var('result_driver_id_column', none) %}

with

{% if results is not none -%}
source as (
    select * from {{ source('app_results', 'results') }}
),

renamed as (
    select
        cast({{ adapter.quote(var('result_race_id_column')) }} as text) as race_id,
        {% if driver_column -%}
        cast({{ adapter.quote(driver_column) }} as text) as driver_id,
        {%- else -%}
        cast(null as text) as driver_id,
        {%- endif %}
        {{ racemap_whole_number(adapter.quote(var('result_number_column'))) }} as car_number,
        {{ racemap_whole_number(adapter.quote(var('result_position_column'))) }} as position
    from source
),
{%- else -%}
renamed as (
    select
        cast(null as text) as race_id,
        cast(null as text) as driver_id,
        cast(null as integer) as car_number,
        cast(null as integer) as position
    where false
),
{%- endif %}

-- A classified position is a whole number of 1 or more: 0 or a negative number is none, as
-- OpenF1's null position is (racemap_whole_number already reads '-1' as none).
final as (
    select
        race_id,
        driver_id,
        car_number,
        case when position >= 1 then position end as position,
        coalesce(position >= 1, false) as is_classified
    from renamed
)

select * from final
