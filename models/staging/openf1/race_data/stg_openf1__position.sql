{#-
    OpenF1 position: one row per (session_key, driver_number, date) at which a car's position
    changed, unique by raw's primary key; rows OpenF1 no longer lists are left out.
-#}
with

source as (
    select * from {{ source('openf1', 'openf1_position') }}
),

renamed as (
    select
        session_key,
        driver_number,
        date as recorded_at,
        meeting_key,
        position,
        fetched_at
    from source
    where removed_at is null
)

select * from renamed
