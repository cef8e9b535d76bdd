with

resolved as (
    select * from {{ ref('int_matches_resolved') }}
),

seasons_loaded as (
    select * from {{ ref('int_seasons_loaded') }}
),

final as (
    select
        resolved.race_id,
        case when resolved.reason is null then resolved.proposed_meeting_key end as meeting_key,
        case when resolved.reason is null then resolved.proposed_session_key end as session_key,
        resolved.circuit_id,
        resolved.circuit_key,
        resolved.race_name,
        case when resolved.reason is null then 'mapped' else 'unmapped' end as status,
        case when resolved.reason is null then resolved.method end as method,
        resolved.reason,
        resolved.invalid_detail as detail,
        resolved.override_action = 'skip' as is_skipped_by_override,
        seasons_loaded.season is not null as is_season_loaded,
        resolved.season,
        resolved.delta_hours,
        resolved.candidate_count,
        resolved.race_start_at
    from resolved
    left join seasons_loaded
        on resolved.season = seasons_loaded.season
)

select * from final
