{#-
    Race control's messages (flags, safety car, penalties, track limits): one row per
    (race_id, session_kind, issued_at, category, message); driver_id and driver_number are set
    only for a message about one car.
-#}
with

race_control as (
    select * from {{ ref('stg_openf1__race_control') }}
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
        race_control.driver_number,
        race_control.issued_at,
        race_control.category,
        race_control.message,
        race_control.flag,
        race_control.scope,
        race_control.sector,
        race_control.lap_number,
        race_control.qualifying_phase
    from race_control
    inner join race_keys
        on race_control.session_key = race_keys.session_key
        and coalesce(race_control.driver_number, -1) = race_keys.join_driver_number
)

select * from final
