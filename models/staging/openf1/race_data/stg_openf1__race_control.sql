{#-
    OpenF1 race_control: one row per (session_key, date, category, message), unique by raw's
    primary key; rows OpenF1 no longer lists are left out. driver_number is set only for a
    message about one car; lap_number is the leader's lap.
-#}
with

source as (
    select * from {{ source('openf1', 'openf1_race_control') }}
),

renamed as (
    select
        session_key,
        date as issued_at,
        category,
        message,
        meeting_key,
        nullif(trim(flag), '') as flag,
        nullif(trim(scope), '') as scope,
        sector,
        driver_number,
        lap_number,
        qualifying_phase,
        fetched_at
    from source
    where removed_at is null
)

select * from renamed
