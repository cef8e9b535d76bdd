{#-
    Pit lane visits: one row per (race_id, session_kind, driver_number, pit_at), with the lap
    and the durations in seconds.
-#}
with

pit as (
    select * from {{ ref('stg_openf1__pit') }}
),

race_keys as (
    select * from {{ ref('int_race_data_drivers') }}
),

final as (
    select
        {{ race_data_driver_keys('pit') }},
        pit.pit_at,
        pit.lap_number,
        pit.pit_duration,
        pit.stop_duration,
        pit.lane_duration
    from pit
    {{ race_data_join('pit') }}
)

select * from final
