-- Warns about sessions of a race weekend (a meeting with a Grand Prix race session) whose
-- (session_type, session_name) pair is not in seed session_kinds: OpenF1 named a session in a
-- way racemap has not seen (as in https://github.com/br-g/openf1/issues/303). Such a session is
-- left out of race_openf1_sessions until a row is added to seeds/session_kinds.csv.
{{ config(severity='warn') }}

with

sessions as (
    select * from {{ ref('int_sessions_classified') }}
),

race_weekends as (
    select distinct meeting_key
    from sessions
    where session_kind = 'race'
),

failures as (
    select
        sessions.meeting_key,
        sessions.session_key,
        sessions.session_type,
        sessions.session_name
    from sessions
    inner join race_weekends
        on sessions.meeting_key = race_weekends.meeting_key
    where not sessions.is_known_pair
)

select * from failures
