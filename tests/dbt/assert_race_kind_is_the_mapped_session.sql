-- The session of kind race in race_openf1_sessions is the mapped race's session_key in
-- race_openf1_mapping (the kinds and the matching rule agree), and every mapped race has it.
-- Rows returned are failures.
with

mapping as (
    select * from {{ ref('race_openf1_mapping') }}
),

sessions as (
    select * from {{ ref('race_openf1_sessions') }}
),

race_sessions as (
    select
        race_id,
        session_key
    from sessions
    where session_kind = 'race'
        and not is_cancelled
),

failures as (
    select
        mapping.race_id,
        mapping.session_key,
        race_sessions.session_key as race_kind_session_key
    from mapping
    left join race_sessions
        on mapping.race_id = race_sessions.race_id
    where mapping.status = 'mapped'
        and race_sessions.session_key is distinct from mapping.session_key
)

select * from failures
