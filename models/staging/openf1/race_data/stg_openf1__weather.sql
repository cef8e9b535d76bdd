{#-
    OpenF1 weather: one row per (session_key, date), unique by raw's primary key; rows OpenF1 no
    longer lists are left out. The loader has parsed the dates the recordings wrote with pandas
    ('2023-03-05 14:01:47.286000+00:00') into timestamptz. rainfall is 0 or 1 as sent; is_raining is null where it is (unknown, not dry).
-#}
with

source as (
    select * from {{ source('openf1', 'openf1_weather') }}
),

renamed as (
    select
        session_key,
        date as recorded_at,
        meeting_key,
        air_temperature,
        track_temperature,
        humidity,
        pressure,
        rainfall,
        rainfall > 0 as is_raining,
        wind_speed,
        wind_direction,
        fetched_at
    from source
    where removed_at is null
)

select * from renamed
