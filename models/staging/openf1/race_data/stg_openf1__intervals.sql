{#-
    OpenF1 intervals: one row per (session_key, driver_number, date), unique by raw's primary key;
    rows OpenF1 no longer lists are left out. gap_to_leader and interval come as sent (jsonb): a
    number of seconds, a string such as "+1 LAP" for a lapped car, an empty string, or null. Each
    is split into seconds (when a number) and laps (the n of "+n LAP(S)"); an empty string or null
    gives neither; the text is kept for what is neither (null for an empty string).
-#}
with

source as (
    select * from {{ source('openf1', 'openf1_intervals') }}
),

renamed as (
    select
        session_key,
        driver_number,
        date as recorded_at,
        meeting_key,
        case
            when jsonb_typeof(gap_to_leader) = 'number'
                then cast(gap_to_leader #>> '{}' as double precision)
        end as gap_to_leader_seconds,
        cast(
            substring(gap_to_leader #>> '{}' from '^\+\s*([0-9]+)\s*LAPS?$') as integer
        ) as gap_to_leader_laps,
        nullif(trim(gap_to_leader #>> '{}'), '') as gap_to_leader_text,
        case
            when jsonb_typeof(interval) = 'number'
                then cast(interval #>> '{}' as double precision)
        end as interval_seconds,
        cast(
            substring(interval #>> '{}' from '^\+\s*([0-9]+)\s*LAPS?$') as integer
        ) as interval_laps,
        nullif(trim(interval #>> '{}'), '') as interval_text,
        fetched_at
    from source
    where removed_at is null
)

select * from renamed
