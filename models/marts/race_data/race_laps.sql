{#-
    Every lap of every synced session of a mapped race, keyed by the application's race id and
    driver id: one row per (race_id, session_kind, driver_number, lap_number). Durations in
    seconds, speeds in km/h, null where OpenF1 has none (first laps, red flags, a trap that did
    not read). racemap.race_laps(race_id, session_kind) reads it.
-#}
with

laps as (
    select * from {{ ref('stg_openf1__laps') }}
),

race_keys as (
    select * from {{ ref('int_race_data_drivers') }}
),

final as (
    select
        {{ race_data_driver_keys('laps') }},
        laps.lap_number,
        laps.lap_duration,
        laps.duration_sector_1,
        laps.duration_sector_2,
        laps.duration_sector_3,
        laps.i1_speed,
        laps.i2_speed,
        laps.st_speed,
        laps.date_start,
        laps.is_pit_out_lap
    from laps
    {{ race_data_join('laps') }}
)

select * from final
