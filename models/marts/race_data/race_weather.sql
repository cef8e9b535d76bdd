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
        {{ race_data_session_keys() }},
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
    {{ race_data_join('weather', driver_number='-1') }}
)

select * from final
