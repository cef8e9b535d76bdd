{#-
    The weather at the track: one row per (race_id, session_kind, recorded_at), about a minute
    apart.
-#}
with

weather as (
    select * from {{ ref('stg_openf1__weather') }}
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
        weather.recorded_at,
        weather.air_temperature,
        weather.track_temperature,
        weather.humidity,
        weather.pressure,
        weather.rainfall,
        weather.is_raining,
        weather.wind_speed,
        weather.wind_direction
    from weather
    inner join race_keys
        on weather.session_key = race_keys.session_key
        and race_keys.join_driver_number = -1
)

select * from final
