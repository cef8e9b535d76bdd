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
        {{ race_data_session_keys() }},
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
    -- A message about no car (driver_number null) joins the session's own row.
    {{ race_data_join('race_control', driver_number='coalesce(race_control.driver_number, -1)') }}
)

select * from final
