{#-
    The laps OpenF1's laps answer lacks: per (session, car) with laps, the lap numbers from 1 up
    to the car's highest lap that it has no row for, one row per such car (none when its laps
    run without a gap). OpenF1 numbers a car's laps from 1 without a gap, and has lost some
    before, restoring them when asked (https://github.com/br-g/openf1/issues/469, laps 39 and
    40 of some cars of the 2026 Hungarian GP; #402, lap 2 of every car at Miami 2026); the
    recorded sessions have none missing. race_data_checks names them (lap_missing).
-#}
with

laps as (
    select * from {{ ref('stg_openf1__laps') }}
),

last_laps as (
    select
        session_key,
        driver_number,
        max(lap_number) as last_lap
    from laps
    group by session_key, driver_number
),

expected_laps as (
    select
        last_laps.session_key,
        last_laps.driver_number,
        last_laps.last_lap,
        expected.lap_number
    from last_laps
    cross join lateral generate_series(1, last_laps.last_lap) as expected (lap_number)
),

missing as (
    select
        expected_laps.session_key,
        expected_laps.driver_number,
        expected_laps.last_lap,
        expected_laps.lap_number
    from expected_laps
    left join laps
        on expected_laps.session_key = laps.session_key
        and expected_laps.driver_number = laps.driver_number
        and expected_laps.lap_number = laps.lap_number
    where laps.lap_number is null
),

final as (
    select
        session_key,
        driver_number,
        string_agg(cast(lap_number as text), ', ' order by lap_number) as missing_laps,
        count(*) as missing_count,
        max(last_lap) as last_lap
    from missing
    group by session_key, driver_number
)

select * from final
