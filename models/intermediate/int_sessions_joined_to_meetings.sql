{#-
    Every OpenF1 session with what it takes from its meeting: the meeting's circuit when the
    session names none, and the meeting's cancellation (a session of a called-off meeting is
    cancelled too). Decided here once, for the mapping's race sessions
    (int_sessions_filtered_to_races) and the weekend's session kinds (int_sessions_classified).
    A view (dbt_project.yml says why).
-#}

with

sessions as (
    select * from {{ ref('stg_openf1__sessions') }}
),

meetings as (
    select * from {{ ref('stg_openf1__meetings') }}
),

joined as (
    select
        sessions.session_key,
        sessions.meeting_key,
        coalesce(sessions.circuit_key, meetings.circuit_key) as circuit_key,
        sessions.season,
        sessions.session_type,
        sessions.session_name,
        sessions.is_grand_prix_race,
        sessions.is_cancelled or coalesce(meetings.is_cancelled, false) as is_cancelled,
        sessions.started_at,
        sessions.ended_at
    from sessions
    left join meetings
        on sessions.meeting_key = meetings.meeting_key
)

select * from joined
