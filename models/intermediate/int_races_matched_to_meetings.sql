{#-
    One row per race: the evidence for it (the candidate race sessions at its circuit, the
    meetings nearby) and what the rules propose, before races are weighed against each other
    (int_matches_resolved does that). The rules, in order:
      1. a race whose own row is unusable: invalid_race (with its detail);
      2. a reviewed override wins (map: method override; skip: its reason);
      3. seasons before OpenF1's coverage: before_openf1_coverage;
      4. a circuit missing from the circuit map: no_circuit_mapping;
      5. more than one non-cancelled Grand Prix race session in the window: ambiguous;
      6. exactly one: proposed (int_matches_resolved decides conflict and ambiguous);
      7. none: cancelled (only cancelled candidates), not_yet_run (race in the future),
         no_race_session (a meeting there, but no Race session), else no_meeting.
-#}

with

races as (
    select * from {{ ref('int_races_checked') }}
),

circuit_map as (
    select * from {{ ref('circuit_map') }}
),

overrides as (
    select * from {{ ref('mapping_overrides') }}
),

candidates as (
    select * from {{ ref('int_races_joined_to_race_sessions') }}
),

meeting_spans as (
    select * from {{ ref('int_meetings_summarised') }}
),

-- NOT MATERIALIZED: read twice, each time as the join it is, with the tables' statistics (a CTE
-- scan has none, and its estimates invite nested loops).
races_with_circuit as not materialized (
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
        overrides.meeting_key as override_meeting_key,
        overrides.session_key as override_session_key,
        coalesce(candidate_summary.valid_candidate_count, 0) as valid_candidate_count,
        coalesce(candidate_summary.cancelled_candidate_count, 0) as cancelled_candidate_count,
        coalesce(nearby_meetings.meetings_without_race_count, 0) as meetings_without_race_count,
        coalesce(nearby_meetings.cancelled_meeting_count, 0) as cancelled_meeting_count,
        candidate_summary.meeting_key as candidate_meeting_key,
        candidate_summary.session_key as candidate_session_key,
        candidate_summary.delta_hours as candidate_delta_hours
    from races_with_circuit
    left join overrides
        on races_with_circuit.race_id = overrides.race_id
    left join candidate_summary
        on races_with_circuit.race_id = candidate_summary.race_id
    left join nearby_meetings
        on races_with_circuit.race_id = nearby_meetings.race_id
),

ruled as (
    select
        *,
        case
            when is_invalid then 'invalid_race'
            when override_action = 'skip' then override_reason
            when override_action = 'map' then null
            when season < {{ var('openf1_first_season') | int }} then 'before_openf1_coverage'
            when circuit_key is null then 'no_circuit_mapping'
            when valid_candidate_count > 1 then 'ambiguous'
            when valid_candidate_count = 1 then null
            when cancelled_candidate_count > 0 or cancelled_meeting_count > 0 then 'cancelled'
            when race_start_at > {{ racemap_as_of() }} then 'not_yet_run'
            when meetings_without_race_count > 0 then 'no_race_session'
            else 'no_meeting'
        end as rule_reason
    from evidence
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
        invalid_detail,
        override_action,
        rule_reason,
        case
            when rule_reason is null and override_action = 'map' then 'override'
            when rule_reason is null then 'circuit_and_race_time'
        end as method,
        case
            when rule_reason is null and override_action = 'map' then override_meeting_key
            when rule_reason is null then candidate_meeting_key
        end as proposed_meeting_key,
        case
            when rule_reason is null and override_action = 'map' then override_session_key
            when rule_reason is null then candidate_session_key
        end as proposed_session_key,
        case when override_action is null then candidate_delta_hours end as delta_hours,
        valid_candidate_count + cancelled_candidate_count as candidate_count
    from ruled
)

select * from final
