{#-
    Position changes: one row per (race_id, session_kind, driver_number, recorded_at), the car's
    position from that moment on. A car's last row is its position at the end of the session.
-#}
with

positions as (
    select * from {{ ref('stg_openf1__position') }}
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
        positions.driver_number,
        race_keys.name_acronym,
        positions.recorded_at,
        positions.position
    from positions
    inner join race_keys
        on positions.session_key = race_keys.session_key
        and positions.driver_number = race_keys.join_driver_number
)

select * from final
