{#-
    OpenF1 stints: one row per (session_key, driver_number, stint_number), unique by raw's
    primary key; rows OpenF1 no longer lists are left out. lap_start or lap_end is null in some
    stints (a stint OpenF1 opened but had not closed, or a car that never left the pits): kept
    null, not guessed. compound upper case ('SOFT', 'MEDIUM', 'HARD', 'INTERMEDIATE', 'WET'),
    null when unknown (OpenF1 sends 'UNKNOWN' for some).
-#}
with

source as (
    select * from {{ source('openf1', 'openf1_stints') }}
),

renamed as (
    select
        session_key,
        driver_number,
        stint_number,
        meeting_key,
        nullif(upper(trim(compound)), 'UNKNOWN') as compound,
        lap_start,
        lap_end,
        tyre_age_at_start,
        fetched_at
    from source
    where removed_at is null
)

select * from renamed
