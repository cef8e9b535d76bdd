{#-
    Grand Prix race sessions (never Sprints), with their meeting's circuit and cancellation. A
    table, analyzed once built: the candidate join reads it with its real row count (over the
    sessions view, "session_name is Race" is estimated at 0.5 % of the sessions, a fifth of
    what it is, and a low estimate is what makes the planner pick a nested loop).
-#}

with

sessions as (
    select * from {{ ref('stg_openf1__sessions') }}
),

meetings as (
    select * from {{ ref('stg_openf1__meetings') }}
),

race_sessions as (
    select
        sessions.session_key,
        sessions.meeting_key,
        coalesce(sessions.circuit_key, meetings.circuit_key) as circuit_key,
        sessions.season,
        sessions.is_cancelled or coalesce(meetings.is_cancelled, false) as is_cancelled,
        sessions.started_at
    from sessions
    left join meetings
        on sessions.meeting_key = meetings.meeting_key
    where sessions.is_grand_prix_race
)

select * from race_sessions
