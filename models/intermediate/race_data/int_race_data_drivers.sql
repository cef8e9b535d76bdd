{#-
    The keys every race data mart carries, attached once: one row per synced session of a mapped
    race (driver_number null: for data about the session, weather and race control) and one row
    per (session, car) seen in any of the session's race data or its session_result, with the
    race's id, session kind, meeting and session keys, and the application's driver id.
      - sessions: racemap.race_openf1_sessions (every session of a mapped race's weekend);
      - driver_id: race_driver_links, the application's result row of the race by car number
        (its car_number: a car OpenF1's session_result of the race lacks, or before that result
        is loaded, still takes the application's driver, as Stroll's at the 2023 Singapore GP);
        a sprint or qualifying session of the same weekend takes the race's link (one car
        number, one driver in a weekend); null when the application has no result for the car;
      - names and team: OpenF1's drivers record of the session, when synced.
    The marts join here on (session_key, coalesce(driver_number, -1)): an equi-join (car numbers
    are positive), so the row for the session matches the rows with no driver.
    A table: read by every race data mart and the checks.
-#}

with

sessions as (
    select * from {{ ref('race_openf1_sessions') }}
),

links as (
    select * from {{ ref('race_driver_links') }}
),

drivers as (
    select * from {{ ref('stg_openf1__drivers') }}
),

laps as (
    select * from {{ ref('stg_openf1__laps') }}
),

stints as (
    select * from {{ ref('stg_openf1__stints') }}
),

pit as (
    select * from {{ ref('stg_openf1__pit') }}
),

positions as (
    select * from {{ ref('stg_openf1__position') }}
),

intervals as (
    select * from {{ ref('stg_openf1__intervals') }}
),

race_control as (
    select * from {{ ref('stg_openf1__race_control') }}
),

overtakes as (
    select * from {{ ref('stg_openf1__overtakes') }}
),

weather as (
    select * from {{ ref('stg_openf1__weather') }}
),

session_results as (
    select * from {{ ref('stg_openf1__session_results') }}
),

cars as (
    select
        session_key,
        driver_number
    from drivers
    union
    select
        session_key,
        driver_number
    from laps
    union
    select
        session_key,
        driver_number
    from stints
    union
    select
        session_key,
        driver_number
    from pit
    union
    select
        session_key,
        driver_number
    from positions
    union
    select
        session_key,
        driver_number
    from intervals
    union
    select
        session_key,
        driver_number
    from race_control
    where driver_number is not null
    union
    select
        session_key,
        overtaking_driver_number
    from overtakes
    union
    select
        session_key,
        overtaken_driver_number
    from overtakes
),

-- Sessions with race data synced: those with cars, and any with weather or race control.
synced_cars as (
    select
        session_key,
        driver_number
    from cars
    union all
    select
        session_key,
        cast(null as integer) as driver_number
    from (
        select session_key from cars
        union
        select session_key from weather
        union
        select session_key from race_control
    ) as synced_sessions
),

keyed as (
    select
        sessions.race_id,
        sessions.session_kind,
        sessions.meeting_key,
        sessions.session_key,
        synced_cars.driver_number
    from synced_cars
    inner join sessions
        on synced_cars.session_key = sessions.session_key
),

-- Cars present in a session_result only (did not start, no data) count too.
resulted as (
    select
        sessions.race_id,
        sessions.session_kind,
        sessions.meeting_key,
        sessions.session_key,
        session_results.driver_number
    from session_results
    inner join sessions
        on session_results.session_key = sessions.session_key
    where session_results.session_key in (select keyed.session_key from keyed)
),

all_keys as (
    select * from keyed
    union
    select * from resulted
),

final as (
    select
        all_keys.race_id,
        all_keys.session_kind,
        all_keys.meeting_key,
        all_keys.session_key,
        all_keys.driver_number,
        coalesce(all_keys.driver_number, -1) as join_driver_number,
        links.driver_id,
        drivers.name_acronym,
        drivers.full_name,
        drivers.team_name,
        drivers.team_colour
    from all_keys
    left join links
        on all_keys.race_id = links.race_id
        and all_keys.driver_number = links.car_number
    left join drivers
        on all_keys.session_key = drivers.session_key
        and all_keys.driver_number = drivers.driver_number
)

select * from final
