with

matched as (
    select * from {{ ref('int_races_matched_to_meetings') }}
),

results_compared as (
    select * from {{ ref('int_race_results_compared') }}
),

mapping as (
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
