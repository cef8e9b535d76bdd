{#-
    Every session of each mapped race's weekend: practice, sprint qualifying, sprint,
    qualifying and the race, with its kind (int_sessions_classified). What lookups by kind
    read (racemap.lookup, racemap.session_key_for_race(race_id, kind), racemap lookup --session).
-#}
with

mapping as (
    select * from {{ ref('race_openf1_mapping') }}
),

sessions as (
    select * from {{ ref('int_sessions_classified') }}
),

final as (
    select
        mapping.race_id,
        mapping.meeting_key,
        sessions.session_key,
        sessions.session_kind,
        sessions.session_name,
        sessions.started_at as starts_at,
        sessions.is_cancelled,
        sessions.session_type,
        sessions.ended_at as ends_at
    from mapping
    inner join sessions
        on mapping.meeting_key = sessions.meeting_key
    where mapping.status = 'mapped'
        and sessions.session_kind is not null
)

select * from final
