{#- Column names come from vars, so any application table can be mapped without editing SQL. -#}
{%- set time_column = var('race_time_column') -%}

with

source as (
    select * from {{ source('app', 'races') }}
),

renamed as (
    select
        cast({{ adapter.quote(var('race_id_column')) }} as text) as race_id,
        cast({{ adapter.quote(var('race_circuit_column')) }} as text) as circuit_id,
        cast({{ adapter.quote(var('race_name_column')) }} as text) as race_name,
        cast({{ adapter.quote(var('race_date_column')) }} as date) as race_date,
        {% if time_column -%}
        -- Ergast writes '06:00:00', Jolpica-era rows '06:00:00Z': both are UTC.
        cast(
            nullif(rtrim(cast({{ adapter.quote(time_column) }} as text), 'Zz'), '') as time
        ) as race_time,
        {%- else -%}
        cast(null as time) as race_time,
        {%- endif %}
        openf1_meeting_key as current_meeting_key,
        openf1_session_key as current_session_key
    from source
),

final as (
    select
        race_id,
        circuit_id,
        race_name,
        current_meeting_key,
        current_session_key,
        cast(extract(year from race_date) as integer) as season,
        race_time is null as is_race_time_missing,
        race_date,
        race_time,
        -- A race without a start time is placed at noon UTC; the tolerance covers the rest.
        (race_date + coalesce(race_time, time '12:00')) at time zone 'UTC' as race_start_at
    from renamed
)

select * from final
