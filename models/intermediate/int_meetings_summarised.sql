{#-
    Each meeting's time span (first session start to last session end) and its race sessions. A
    table: the sessions are summarised once per build, and the nearby-meetings join of
    int_races_matched_to_meetings reads it with its statistics (over a view, each parallel worker
    summarised every session again).
-#}

with

meetings as (
    select * from {{ ref('stg_openf1__meetings') }}
),

sessions as (
    select * from {{ ref('stg_openf1__sessions') }}
),

session_summary as (
    select
        meeting_key,
        count(*) filter (where is_grand_prix_race) as race_session_count,
        min(started_at) as first_session_at,
        max(coalesce(ended_at, started_at)) as last_session_end_at
    from sessions
    group by meeting_key
),

spans as (
    select
        meetings.meeting_key,
        meetings.circuit_key,
        meetings.season,
        meetings.is_cancelled,
        coalesce(session_summary.race_session_count, 0) as race_session_count,
        coalesce(session_summary.first_session_at, meetings.started_at) as first_session_at,
        coalesce(
            meetings.ended_at,
            session_summary.last_session_end_at,
            meetings.started_at + interval '3 days'
        ) as last_session_end_at
    from meetings
    left join session_summary
        on meetings.meeting_key = session_summary.meeting_key
)

select * from spans
