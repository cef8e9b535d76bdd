{#-
    OpenF1 drivers of the synced sessions: one row per (session_key, driver_number), unique by
    raw's primary key (the registry's keys); rows OpenF1 no longer lists are left out.
-#}
with

source as (
    select * from {{ source('openf1', 'openf1_drivers') }}
),

renamed as (
    select
        session_key,
        driver_number,
        meeting_key,
        trim(broadcast_name) as broadcast_name,
        trim(full_name) as full_name,
        trim(name_acronym) as name_acronym,
        trim(team_name) as team_name,
        nullif(trim(team_colour), '') as team_colour,
        country_code,
        fetched_at
    from source
    where removed_at is null
)

select * from renamed
