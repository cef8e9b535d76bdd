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
        {{ race_data_driver_keys('positions') }},
        positions.recorded_at,
        positions.position
    from positions
    {{ race_data_join('positions') }}
)

select * from final
