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
        {{ race_data_session_keys('overtaking') }},
        overtaking.driver_id as overtaking_driver_id,
        overtakes.overtaking_driver_number,
        overtaken.driver_id as overtaken_driver_id,
        overtakes.overtaken_driver_number,
        overtakes.overtook_at,
        overtakes.position
    from overtakes
    {{ race_data_join('overtakes', 'overtakes.overtaking_driver_number', keys='overtaking') }}
    {{ race_data_join('overtakes', 'overtakes.overtaken_driver_number', keys='overtaken') }}
)

select * from final
