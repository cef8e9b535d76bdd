{#-
    OpenF1 laps: one row per (session_key, driver_number, lap_number), unique by raw's primary
    key; rows OpenF1 no longer lists are left out. Kept as sent: date_start is null on some first
    laps (OpenF1 has no start for a lap begun on the grid), lap_duration is null on a lap with no
    timing (first laps, laps under red flag), i1_speed/i2_speed/st_speed are null where the trap
    did not read; a recording may start after lap 1. Durations in seconds, speeds in km/h.
-#}
with

source as (
    select * from {{ source('openf1', 'openf1_laps') }}
),

renamed as (
    select
        session_key,
        driver_number,
        lap_number,
        meeting_key,
        date_start,
        lap_duration,
        duration_sector_1,
        duration_sector_2,
        duration_sector_3,
        i1_speed,
        i2_speed,
        st_speed,
        coalesce(is_pit_out_lap, false) as is_pit_out_lap,
        fetched_at
    from source
    where removed_at is null
)

select * from renamed
