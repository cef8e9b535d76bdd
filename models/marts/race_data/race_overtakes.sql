{#-
    Overtakes: one row per (race_id, session_kind, overtaking_driver_number,
    overtaken_driver_number, overtook_at), both cars under the application's driver ids.
-#}
with

overtakes as (
    select * from {{ ref('stg_openf1__overtakes') }}
),

race_keys as (
    select * from {{ ref('int_race_data_drivers') }}
),

final as (
    select
        overtaking.race_id,
        overtaking.session_kind,
        overtaking.meeting_key,
        overtaking.session_key,
        overtaking.driver_id as overtaking_driver_id,
        overtakes.overtaking_driver_number,
        overtaken.driver_id as overtaken_driver_id,
        overtakes.overtaken_driver_number,
        overtakes.overtook_at,
        overtakes.position
    from overtakes
    inner join race_keys as overtaking
        on overtakes.session_key = overtaking.session_key
        and overtakes.overtaking_driver_number = overtaking.join_driver_number
    inner join race_keys as overtaken
        on overtakes.session_key = overtaken.session_key
        and overtakes.overtaken_driver_number = overtaken.join_driver_number
)

select * from final
