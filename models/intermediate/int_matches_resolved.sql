{#-
    Races weighed against each other: one meeting, one race. A rule match for a meeting or
    session that a reviewed override gives to another race is a conflict; races that want the
    same meeting or session are all ambiguous (nothing is guessed). Keys held in the races table
    do not decide anything here: a race holding keys that are not its mapping holds stale keys,
    which the apply repairs with --allow-changes (swaps and chains included) and the attention
    list names until then.
-#}

with

matched as (
    select * from {{ ref('int_races_matched_to_meetings') }}
),

-- Per race, the reviewed overrides that claim its meeting or its session. Window counts over
-- the one table (sorts, no join of the races with themselves, no estimate to go wrong): a
-- self-join had CTE scans on both sides, row estimates in the millions, and a JIT compile that
-- cost more than the query.
override_claims as (
    select
        *,
        count(*) filter (where method = 'override')
            over (partition by proposed_meeting_key)
            as meeting_override_claims,
        count(*) filter (where method = 'override')
            over (partition by proposed_session_key)
            as session_override_claims
    from matched
),

-- A rule match for a meeting or session that an override gives another race is blocked (a race
-- proposes one meeting, so an override claiming it is another race's; a null key claims nothing).
blocked as (
    select
        *,
        coalesce(
            method <> 'override'
            and (
                (proposed_meeting_key is not null and meeting_override_claims > 0)
                or (proposed_session_key is not null and session_override_claims > 0)
            ),
            false
        ) as is_blocked
    from override_claims
),

-- The proposals left, weighed against each other: how many want the same meeting, the same
-- session.
contention as (
    select
        *,
        count(*) filter (where method is not null and not is_blocked)
            over (partition by proposed_meeting_key)
            as meeting_claims,
        count(*) filter (where method is not null and not is_blocked)
            over (partition by proposed_session_key)
            as session_claims
    from blocked
),

decided as (
    select
        *,
        case
            when rule_reason is not null then rule_reason
            when method is null then null
            when is_blocked then 'conflict'
            when meeting_claims > 1 or session_claims > 1 then 'ambiguous'
        end as reason
    from contention
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
