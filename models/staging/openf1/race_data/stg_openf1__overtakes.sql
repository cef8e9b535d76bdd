{#-
    OpenF1 overtakes: one row per (session_key, overtaking_driver_number,
    overtaken_driver_number, date), unique by raw's primary key; rows OpenF1 no longer lists are
    left out. position is the overtaking car's position after the move.
-#}
with

source as (
    select * from {{ source('openf1', 'openf1_overtakes') }}
),

renamed as (
    select
        session_key,
        overtaking_driver_number,
        overtaken_driver_number,
        date as overtook_at,
        meeting_key,
        position,
        fetched_at
    from source
    where removed_at is null
)

select * from renamed
