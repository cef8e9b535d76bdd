{#-
    OpenF1 pit: one row per (session_key, driver_number, date) of a pit lane visit, unique by
    raw's primary key; rows OpenF1 no longer lists are left out. pit_duration is the time in the
    pit lane (seconds, as OpenF1 has always sent it); stop_duration (stationary) and lane_duration
    are newer fields, null in older records.
-#}
with

source as (
    select * from {{ source('openf1', 'openf1_pit') }}
),

renamed as (
    select
        session_key,
        driver_number,
        date as pit_at,
        meeting_key,
        lap_number,
        coalesce(pit_duration, lane_duration) as pit_duration,
        stop_duration,
        lane_duration,
        fetched_at
    from source
    where removed_at is null
)

select * from renamed
