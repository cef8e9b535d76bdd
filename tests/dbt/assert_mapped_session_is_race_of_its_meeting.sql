-- Every mapped race's session belongs to its meeting and is that meeting's Grand Prix race
-- session (never a Sprint). Rows returned are failures.
with

mapping as (
    select * from {{ ref('race_openf1_mapping') }}
),

sessions as (
    select * from {{ ref('stg_openf1__sessions') }}
),

failures as (
    select
        mapping.race_id,
        mapping.meeting_key,
        mapping.session_key,
        sessions.meeting_key as session_meeting_key,
        sessions.session_name
    from mapping
    left join sessions
        on mapping.session_key = sessions.session_key
    where mapping.status = 'mapped'
        and (
            sessions.session_key is null
            or sessions.meeting_key <> mapping.meeting_key
            or not sessions.is_grand_prix_race
        )
)

select * from failures
