with

resolved as (
    select * from {{ ref('int_matches_resolved') }}
),

seasons_loaded as (
    select * from {{ ref('int_seasons_loaded') }}
),

results_compared as (
    select * from {{ ref('int_race_results_compared') }}
),

mapping as (
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
),

-- The second signal for mapped races: their results against OpenF1's (int_race_results_compared).
final as (
    select
        mapping.*,
        case
            when mapping.status = 'mapped'
                then coalesce(results_compared.results_check, 'no_results')
        end as results_check,
        case when mapping.status = 'mapped' then results_compared.results_detail end
            as results_detail
    from mapping
    left join results_compared
        on mapping.race_id = results_compared.race_id
        and mapping.session_key = results_compared.session_key
)

select * from final
