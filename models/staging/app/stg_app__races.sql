{#-
    The application's races, typed without failing on a bad row: column names come from vars,
    so any application table maps without editing SQL. A row whose date or time cannot be read,
    or whose date column carries a time that gives another start than its time column, keeps
    nulls there and says why in invalid_detail (the race becomes invalid_race downstream); every
    other row maps as usual. A table, not a view: a view would hold a dependency on every
    column of the application's table, which could then neither drop nor retype one after a run
    (int_races_checked reads it once per build).
-#}
{%- set time_column = var('race_time_column') -%}
{%- set name_column = var('race_name_column') -%}

with

source as (
    select * from {{ source('app', 'races') }}
),

renamed as (
    select
        cast({{ adapter.quote(var('race_id_column')) }} as text) as race_id,
        cast({{ adapter.quote(var('race_circuit_column')) }} as text) as circuit_id,
        {% if name_column -%}
        cast({{ adapter.quote(name_column) }} as text) as race_name,
        {%- else -%}
        cast(null as text) as race_name,
        {%- endif %}
        nullif(trim(cast({{ adapter.quote(var('race_date_column')) }} as text)), '')
            as race_date_text,
        {% if time_column -%}
        nullif(trim(cast({{ adapter.quote(time_column) }} as text)), '') as race_time_text,
        {%- else -%}
        cast(null as text) as race_time_text,
        {%- endif %}
        openf1_meeting_key as current_meeting_key,
        openf1_session_key as current_session_key
    from source
),

-- Dates as YYYY-MM-DD (a date column, or text), optionally followed by a time of day after a T
-- or a space (2024-12-06T15:00:00Z, or 2024-12-06 15:00:00+00 as a timestamptz column reads),
-- and nothing else; times as HH:MM[:SS[.fff]] with an optional offset: Ergast writes
-- '06:00:00', Jolpica-era rows '06:00:00Z', others '14:00:00+02:00'.
-- Materialized: each regexp_match runs at most once per row. Inlined, every later reference to
-- a part would run it again (the plan had hundreds of calls per row: 1 s for 1,160 races). The
-- fence hides the races' statistics from the planner, so nothing joins this view: the joins
-- read int_races_checked, a table analyzed once built.
-- What a date or a time column gives as text (2024-03-02, 06:00:00) is cut by position, into the
-- parts the regexps would return: with their capture groups they cost 20-50 µs a row, seconds
-- for 100,000 races.
parts as materialized (
    select
        *,
        case
            when length(race_date_text) = 10
                and translate(race_date_text, '0123456789', '') = '--'
                and substr(race_date_text, 5, 1) = '-'
                and substr(race_date_text, 8, 1) = '-'
                then array[
                    substr(race_date_text, 1, 4),
                    substr(race_date_text, 6, 2),
                    substr(race_date_text, 9, 2)
                ]
            else
                regexp_match(
                    race_date_text,
                    '^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})'
                    || '(?:(?:T|t|\s+)([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}(?:\.[0-9]+)?))?'
                    || '\s*(Z|z|UTC|[+-][0-9]{1,2}(?::?[0-9]{2})?)?)?$'
                )
        end as date_parts,
        case
            when length(race_time_text) = 8
                and translate(race_time_text, '0123456789', '') = '::'
                and substr(race_time_text, 3, 1) = ':'
                and substr(race_time_text, 6, 1) = ':'
                then array[
                    substr(race_time_text, 1, 2),
                    substr(race_time_text, 4, 2),
                    substr(race_time_text, 7, 2),
                    null
                ]
            else
                regexp_match(
                    race_time_text,
                    '^([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}(?:\.[0-9]+)?))?'
                    || '\s*(Z|z|UTC|[+-][0-9]{1,2}(?::?[0-9]{2})?)?$'
                )
        end as time_parts
    from renamed
),

numbers as (
    select
        *,
        cast(date_parts[1] as integer) as date_year,
        cast(date_parts[2] as integer) as date_month,
        cast(date_parts[3] as integer) as date_day,
        -- The time of day a date text carries (null when it has none).
        cast(date_parts[4] as integer) as date_time_hour,
        cast(date_parts[5] as integer) as date_time_minute,
        coalesce(cast(date_parts[6] as numeric), 0) as date_time_second,
        {{ app_utc_offset('date_parts[7]') }} as date_time_offset,
        cast(time_parts[1] as integer) as time_hour,
        cast(time_parts[2] as integer) as time_minute,
        coalesce(cast(time_parts[3] as numeric), 0) as time_second,
        {{ app_utc_offset('time_parts[4]') }} as time_offset
    from parts
),

checked as materialized (
    select
        *,
        date_year >= 1
        and date_month between 1 and 12
        and date_day between 1 and 31
        and date_day <= case
            when date_month in (4, 6, 9, 11) then 30
            when date_month <> 2 then 31
            when date_year % 4 = 0 and (date_year % 100 <> 0 or date_year % 400 = 0) then 29
            else 28
        end
        and (date_time_hour is null or {{ app_time_is_valid('date_time') }}) as is_date_valid,
        {{ app_time_is_valid('time') }} as is_time_valid
    from numbers
),

-- The start each column gives: the time column's (on the date), and the date column's own time.
-- A date column's midnight is a date without a time (a timestamp column holding dates).
starts as (
    select
        *,
        case
            when not coalesce(is_date_valid, false) or date_time_hour is null then null
            when date_time_hour = 0 and date_time_minute = 0 and date_time_second = 0 then null
            else {{ app_start_at('date_time') }}
        end as date_column_start_at,
        case
            when not coalesce(is_date_valid, false) or not coalesce(is_time_valid, false)
                then null
            else {{ app_start_at('time') }}
        end as time_column_start_at
    from checked
),

final as (
    select
        race_id,
        circuit_id,
        race_name,
        current_meeting_key,
        current_session_key,
        race_date_text,
        race_time_text,
        case
            when race_id is null then 'no id'
            when circuit_id is null then 'no circuit'
            when race_date_text is null then 'no date'
            when not coalesce(is_date_valid, false)
                then 'unreadable date ''' || race_date_text || ''''
            when race_time_text is not null and not coalesce(is_time_valid, false)
                then 'unreadable time ''' || race_time_text || ''''
            when date_column_start_at <> time_column_start_at
                then 'date ''' || race_date_text || ''' and time ''' || race_time_text
                || ''' give different starts'
        end as invalid_detail,
        case when is_date_valid then date_year end as season,
        case when is_date_valid then make_date(date_year, date_month, date_day) end as race_date,
        case
            when not coalesce(is_date_valid, false) then null
            when race_time_text is not null and not coalesce(is_time_valid, false) then null
            -- Two times that disagree: the race's start is unknown.
            when date_column_start_at <> time_column_start_at then null
            -- A race without a start time is placed at noon UTC; the tolerance covers the rest.
            else coalesce(
                    time_column_start_at,
                    date_column_start_at,
                    (make_date(date_year, date_month, date_day) + time '12:00') at time zone 'UTC'
                )
        end as race_start_at
    from starts
)

select * from final
