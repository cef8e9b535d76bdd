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
        race_keys.race_id,
        race_keys.session_kind,
        race_keys.meeting_key,
        race_keys.session_key,
        race_keys.driver_id,
        pit.driver_number,
        race_keys.name_acronym,
        pit.pit_at,
        pit.lap_number,
        pit.pit_duration,
        pit.stop_duration,
        pit.lane_duration
    from pit
    inner join race_keys
        on pit.session_key = race_keys.session_key
        and pit.driver_number = race_keys.join_driver_number
)

select * from final
