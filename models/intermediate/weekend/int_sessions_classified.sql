{#-
    Every OpenF1 session with its kind on a race weekend (practice_1 ... race), from the
    (session_type, session_name) pair in seed session_kinds: never from one field alone, because
    OpenF1 has used both for other things (2023 "Sprint Shootout"; in January 2026 the types of
    the two sprint sessions were swapped, https://github.com/br-g/openf1/issues/303). A pair the
    seed does not know, and testing days, get no kind (test assert_race_weekend_sessions_have_a_kind).
    A table: every session is classified once per build, not once for each of its tests and
    for race_openf1_sessions.
-#}

with

sessions as (
    select * from {{ ref('int_sessions_joined_to_meetings') }}
),

session_kinds as (
    select * from {{ ref('session_kinds') }}
),

classified as (
    select
        sessions.session_key,
        sessions.meeting_key,
        nullif(trim(session_kinds.session_kind), '') as session_kind,
        sessions.session_name,
        sessions.session_type,
        session_kinds.session_name is not null as is_known_pair,
        sessions.is_cancelled,
        sessions.started_at,
        sessions.ended_at
    from sessions
    left join session_kinds
        on lower(sessions.session_type) = lower(trim(session_kinds.session_type))
        and lower(sessions.session_name) = lower(trim(session_kinds.session_name))
)

select * from classified
