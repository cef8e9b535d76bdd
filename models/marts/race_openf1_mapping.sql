with

matched as (
    select * from {{ ref('int_races_matched_to_meetings') }}
),

final as (
    select
        race_id,
        case when reason is null then proposed_meeting_key end as meeting_key,
        case when reason is null then proposed_session_key end as session_key,
        circuit_id,
        circuit_key,
        race_name,
        case when reason is null then 'mapped' else 'unmapped' end as status,
        case when reason is null then method end as method,
        reason,
        season,
        delta_hours,
        candidate_count,
        race_start_at
    from matched
)

select * from final
