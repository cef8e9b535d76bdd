{#-
    Grand Prix race sessions (never Sprints), with their meeting's circuit and cancellation
    (int_sessions_joined_to_meetings). A table, analyzed once built: the candidate join reads it
    with its real row count (over the sessions view, "session_name is Race" is estimated at 0.5 %
    of the sessions, a fifth of what it is, and a low estimate is what makes the planner pick a
    nested loop).
-#}

with

sessions as (
    select * from {{ ref('int_sessions_joined_to_meetings') }}
),

race_sessions as (
    select
        session_key,
        meeting_key,
        circuit_key,
        season,
        is_cancelled,
        started_at
    from sessions
    where is_grand_prix_race
)

select * from race_sessions
