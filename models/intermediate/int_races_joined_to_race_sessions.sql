{#-
    Every Grand Prix race session at the race's circuit that starts within the tolerance of the
    race's start: a range join on (circuit_key, started_at), served by the raw sessions index.
-#}
with

races as (
    select * from {{ ref('int_races_checked') }}
),

circuit_map as (
    select * from {{ ref('circuit_map') }}
),

race_sessions as (
    select * from {{ ref('int_sessions_filtered_to_races') }}
),

candidates as (
    select
        races.race_id,
        race_sessions.meeting_key,
        race_sessions.session_key,
        race_sessions.is_cancelled,
        round(
            cast(
                extract(epoch from race_sessions.started_at - races.race_start_at) / 3600.0
                as numeric
            ),
            2
        ) as delta_hours
    from races
    inner join circuit_map
        on races.circuit_id = circuit_map.circuit_id
    inner join race_sessions
        on circuit_map.circuit_key = race_sessions.circuit_key
        and race_sessions.started_at
        between races.race_start_at - {{ racemap_tolerance() }}
        and races.race_start_at + {{ racemap_tolerance() }}
    where not races.is_invalid
)

select * from candidates
