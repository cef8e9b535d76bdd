{#-
    One row per race: the meeting and Grand Prix race session it maps to, or the one reason it
    does not. The rules, in order:
      1. a reviewed override wins (map: method override; skip: its reason);
      2. seasons before OpenF1's coverage: before_openf1_coverage;
      3. a circuit missing from the circuit map: no_circuit_mapping;
      4. more than one non-cancelled race session in the window: ambiguous;
      5. exactly one: mapped, unless another race holds or claims its keys (conflict)
         or also wants them (ambiguous, both races);
      6. none: cancelled (only cancelled candidates), not_yet_run (race in the future),
         no_race_session (a meeting there, but no Race session), else no_meeting.
-#}

{{ config(materialized='table') }}

with

races as (
    select * from {{ ref('stg_app__races') }}
),

circuit_map as (
    select * from {{ ref('circuit_map') }}
),

overrides as (
    select * from {{ ref('mapping_overrides') }}
),

candidates as (
    select * from {{ ref('int_races__race_session_candidates') }}
),

meeting_spans as (
    select * from {{ ref('int_openf1__meeting_spans') }}
),

races_with_circuit as (
    select
        races.*,
        circuit_map.circuit_key
    from races
    left join circuit_map
        on races.circuit_id = circuit_map.circuit_id
),

candidate_summary as (
    select
        race_id,
        count(*) filter (where not is_cancelled) as valid_candidate_count,
        count(*) filter (where is_cancelled) as cancelled_candidate_count,
        -- Taken only where valid_candidate_count = 1, so min() is that one candidate.
        min(meeting_key) filter (where not is_cancelled) as meeting_key,
        min(session_key) filter (where not is_cancelled) as session_key,
        min(delta_hours) filter (where not is_cancelled) as delta_hours
    from candidates
    group by race_id
),

nearby_meetings as (
    select
        races_with_circuit.race_id,
        count(*) filter (
            where meeting_spans.race_session_count = 0 and not meeting_spans.is_cancelled
        ) as meetings_without_race_count,
        count(*) filter (where meeting_spans.is_cancelled) as cancelled_meeting_count
    from races_with_circuit
    inner join meeting_spans
        on races_with_circuit.circuit_key = meeting_spans.circuit_key
        and races_with_circuit.race_start_at
        between meeting_spans.first_session_at - {{ racemap_tolerance() }}
        and meeting_spans.last_session_end_at + {{ racemap_tolerance() }}
    group by races_with_circuit.race_id
),

evidence as (
    select
        races_with_circuit.*,
        overrides.action as override_action,
        overrides.reason as override_reason,
        coalesce(candidate_summary.valid_candidate_count, 0) as valid_candidate_count,
        coalesce(candidate_summary.cancelled_candidate_count, 0) as cancelled_candidate_count,
        coalesce(nearby_meetings.meetings_without_race_count, 0) as meetings_without_race_count,
        coalesce(nearby_meetings.cancelled_meeting_count, 0) as cancelled_meeting_count,
        case
            when overrides.action = 'map' then 'override'
            when overrides.action is null
                and races_with_circuit.season >= {{ var('openf1_first_season') | int }}
                and candidate_summary.valid_candidate_count = 1
                then 'circuit_and_race_time'
        end as method,
        case
            when overrides.action = 'map' then overrides.meeting_key
            when overrides.action is null
                and races_with_circuit.season >= {{ var('openf1_first_season') | int }}
                and candidate_summary.valid_candidate_count = 1
                then candidate_summary.meeting_key
        end as proposed_meeting_key,
        case
            when overrides.action = 'map' then overrides.session_key
            when overrides.action is null
                and races_with_circuit.season >= {{ var('openf1_first_season') | int }}
                and candidate_summary.valid_candidate_count = 1
                then candidate_summary.session_key
        end as proposed_session_key,
        case
            when overrides.action is null then candidate_summary.delta_hours
        end as delta_hours
    from races_with_circuit
    left join overrides
        on races_with_circuit.race_id = overrides.race_id
    left join candidate_summary
        on races_with_circuit.race_id = candidate_summary.race_id
    left join nearby_meetings
        on races_with_circuit.race_id = nearby_meetings.race_id
),

proposals as (
    select
        race_id,
        method,
        proposed_meeting_key,
        proposed_session_key
    from evidence
    where method is not null
),

-- Keys another race already holds in the races table, or that an override gives another race.
-- Equi-joins, one per key, so that each is a hash join (an OR inside a correlated EXISTS is a
-- per-row scan: quadratic in the number of races).
blocked as (
    select proposals.race_id
    from proposals
    inner join races as holders
        on proposals.proposed_meeting_key = holders.current_meeting_key
        and proposals.race_id <> holders.race_id
    union
    select proposals.race_id
    from proposals
    inner join races as holders
        on proposals.proposed_session_key = holders.current_session_key
        and proposals.race_id <> holders.race_id
    union
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

-- Races that want the same meeting or session: none of them gets it.
contention as (
    select
        race_id,
        count(*) over (partition by proposed_meeting_key) as meeting_claims,
        count(*) over (partition by proposed_session_key) as session_claims
    from proposals
    where not exists (
            select 1 from blocked
            where blocked.race_id = proposals.race_id
        )
),

decided as (
    select
        evidence.*,
        blocked.race_id is not null as is_blocked,
        coalesce(contention.meeting_claims > 1 or contention.session_claims > 1, false)
            as is_contended,
        case
            when evidence.override_action = 'skip' then evidence.override_reason
            when evidence.override_action = 'map' then null
            when evidence.season < {{ var('openf1_first_season') | int }}
                then 'before_openf1_coverage'
            when evidence.circuit_key is null then 'no_circuit_mapping'
            when evidence.valid_candidate_count > 1 then 'ambiguous'
            when evidence.valid_candidate_count = 1 then null
            when evidence.cancelled_candidate_count > 0
                or evidence.cancelled_meeting_count > 0 then 'cancelled'
            when evidence.race_start_at > {{ racemap_as_of() }} then 'not_yet_run'
            when evidence.meetings_without_race_count > 0 then 'no_race_session'
            else 'no_meeting'
        end as rule_reason
    from evidence
    left join blocked
        on evidence.race_id = blocked.race_id
    left join contention
        on evidence.race_id = contention.race_id
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
        case
            when rule_reason is null and is_blocked then 'conflict'
            when rule_reason is null and is_contended then 'ambiguous'
            else rule_reason
        end as reason,
        method,
        proposed_meeting_key,
        proposed_session_key,
        delta_hours,
        valid_candidate_count + cancelled_candidate_count as candidate_count
    from decided
)

select * from final
