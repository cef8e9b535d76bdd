{#-
    Races weighed against each other: one meeting, one race. A rule match for a meeting or
    session that a reviewed override gives to another race is a conflict; races that want the
    same meeting or session are all ambiguous (nothing is guessed). Keys held in the races table
    do not decide anything here: a race holding keys that are not its mapping holds stale keys,
    which the apply repairs with --allow-changes (swaps and chains included) and the attention
    list names until then.
-#}

{{ config(materialized='table') }}

with

matched as (
    select * from {{ ref('int_races_matched_to_meetings') }}
),

proposals as (
    select
        race_id,
        method,
        proposed_meeting_key,
        proposed_session_key
    from matched
    where method is not null
),

-- Equi-joins, one per key, so that each is a hash join (an OR inside a correlated EXISTS is a
-- per-row scan: quadratic in the number of races).
blocked_by_override as (
    select proposals.race_id
    from proposals
    inner join proposals as claims
        on proposals.proposed_meeting_key = claims.proposed_meeting_key
        and proposals.race_id <> claims.race_id
    where proposals.method <> 'override' and claims.method = 'override'
    union
    select proposals.race_id
    from proposals
    inner join proposals as claims
        on proposals.proposed_session_key = claims.proposed_session_key
        and proposals.race_id <> claims.race_id
    where proposals.method <> 'override' and claims.method = 'override'
),

contention as (
    select
        race_id,
        count(*) over (partition by proposed_meeting_key) as meeting_claims,
        count(*) over (partition by proposed_session_key) as session_claims
    from proposals
    where not exists (
            select 1 from blocked_by_override
            where blocked_by_override.race_id = proposals.race_id
        )
),

decided as (
    select
        matched.*,
        case
            when matched.rule_reason is not null then matched.rule_reason
            when blocked_by_override.race_id is not null then 'conflict'
            when contention.meeting_claims > 1 or contention.session_claims > 1 then 'ambiguous'
        end as reason
    from matched
    left join blocked_by_override
        on matched.race_id = blocked_by_override.race_id
    left join contention
        on matched.race_id = contention.race_id
),

final as (
    select
        race_id,
        circuit_id,
        circuit_key,
        race_name,
        season,
        race_start_at,
        current_meeting_key,
        current_session_key,
        reason,
        invalid_detail,
        override_action,
        method,
        proposed_meeting_key,
        proposed_session_key,
        delta_hours,
        candidate_count
    from decided
)

select * from final
