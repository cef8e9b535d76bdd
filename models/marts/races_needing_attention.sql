{#-
    Every race that needs a person, one row each, with what to do. A view over the races table
    as it is now (after the apply, or after a hand edit), so a run, `racemap validate` and
    `racemap status` all read the same list:
      - unmapped, in the past, in a season whose OpenF1 data was loaded, for a reason that needs
        attention (seed unmapped_reasons; never cancelled, before_openf1_coverage, not_yet_run),
        unless a reviewed skip override accepts it; invalid_race always;
      - stale_keys: it holds keys that are not its mapping (a called-off, removed or re-keyed
        meeting, a race unmapped now, a swap, keys set by hand, a change held back);
      - conflict: it is mapped but its keys are held by another race (which holds stale keys);
      - results_disagree: its results disagree with OpenF1's for its race session.
    A row of the races table without an id is an invalid_race too (int_races_without_id): listed
    with a null race_id, named by its circuit, date and time in its detail.
    The keys are read live (stg_app__race_keys: no parsing, so this view stays fast at any
    scale); everything else comes from the build's tables. Every join is an equi-join, so that
    each is a hash join (an OR in a join condition is a nested loop: quadratic in the races).
-#}

with

-- NOT MATERIALIZED: read three times, each time as the table, with its statistics (a CTE scan
-- has none: estimates in the millions of rows, a JIT compile longer than the query).
mapping as not materialized (
    select * from {{ ref('race_openf1_mapping') }}
),

race_keys as (
    select * from {{ ref('stg_app__race_keys') }}
),

reasons as (
    select * from {{ ref('unmapped_reasons') }}
),

meetings as (
    select * from {{ ref('stg_openf1__meetings') }}
),

races_without_id as (
    select * from {{ ref('int_races_without_id') }}
),

-- One row per race id (a duplicated id is an invalid_race: its row holding keys, if any).
races as (
    select distinct on (race_id)
        race_id,
        current_meeting_key,
        current_session_key
    from race_keys
    where race_id is not null
    order by race_id, current_meeting_key nulls last, current_session_key nulls last
),

-- Every row holding a key, by its race id.
holders as (
    select
        race_id as holder_race_id,
        current_meeting_key as held_meeting_key,
        current_session_key as held_session_key
    from race_keys
    where race_id is not null
        and (current_meeting_key is not null or current_session_key is not null)
),

judged as (
    select
        mapping.race_id,
        mapping.season,
        mapping.race_name,
        mapping.circuit_id,
        mapping.race_start_at,
        mapping.status,
        mapping.reason,
        mapping.detail as invalid_detail,
        mapping.meeting_key,
        mapping.session_key,
        mapping.results_check,
        mapping.results_detail,
        races.current_meeting_key as held_meeting_key,
        races.current_session_key as held_session_key,
        reasons.meaning,
        reasons.action as reason_action,
        coalesce(reasons.needs_attention, false) as reason_needs_attention,
        coalesce(mapping.is_skipped_by_override, false) as is_skipped,
        mapping.is_season_loaded,
        (races.current_meeting_key is not null or races.current_session_key is not null)
        and (
            races.current_meeting_key is distinct from mapping.meeting_key
            or races.current_session_key is distinct from mapping.session_key
        )
        and (mapping.status = 'mapped' or mapping.is_season_loaded)
        and coalesce(mapping.reason, '') <> 'invalid_race' as has_stale_keys,
        held_meetings.meeting_key is null as is_held_meeting_unknown,
        coalesce(held_meetings.is_cancelled, false) as is_held_meeting_cancelled
    from mapping
    inner join races
        on mapping.race_id = races.race_id
    left join reasons
        on mapping.reason = reasons.reason
    left join meetings as held_meetings
        on races.current_meeting_key = held_meetings.meeting_key
),

-- Another race holds its meeting or its session: one equi-join per key.
held_elsewhere as (
    select
        mapping.race_id,
        holders.holder_race_id
    from mapping
    inner join holders
        on mapping.meeting_key = holders.held_meeting_key
    where mapping.status = 'mapped'
        and holders.holder_race_id <> mapping.race_id
    union all
    select
        mapping.race_id,
        holders.holder_race_id
    from mapping
    inner join holders
        on mapping.session_key = holders.held_session_key
    where mapping.status = 'mapped'
        and holders.holder_race_id <> mapping.race_id
),

blockers as (
    select
        race_id,
        min(holder_race_id) as blocked_by_race_id
    from held_elsewhere
    group by race_id
),

classified as (
    select
        judged.*,
        blockers.blocked_by_race_id,
        case
            when judged.reason = 'invalid_race' then 'unmapped'
            when judged.status = 'unmapped'
                and judged.reason_needs_attention
                and not judged.is_skipped
                and judged.is_season_loaded
                and judged.race_start_at < {{ racemap_as_of() }}
                then 'unmapped'
            when judged.has_stale_keys then 'stale_keys'
            when blockers.blocked_by_race_id is not null then 'conflict'
            when judged.results_check = 'disagree' then 'results_disagree'
        end as kind
    from judged
    left join blockers
        on judged.race_id = blockers.race_id
),

listed as (
    select
        race_id,
        season,
        race_name,
        circuit_id,
        race_start_at,
        kind,
        reason,
        case
            when kind = 'unmapped' and reason = 'invalid_race'
                then 'its row is unusable: ' || invalid_detail
            when kind = 'unmapped'
                then reason || ': ' || meaning
                || case when
                        has_stale_keys
                        then ', yet it holds meeting '
                        || coalesce(cast(held_meeting_key as text), '-') || ' / session '
                        || coalesce(cast(held_session_key as text), '-')
                    else ''
                end
            when kind = 'stale_keys'
                then 'holds meeting '
                || coalesce(cast(held_meeting_key as text), '-') || ' / session '
                || coalesce(cast(held_session_key as text), '-') || ', '
                || case
                    when is_held_meeting_cancelled then 'a meeting OpenF1 has called off'
                    when held_meeting_key is not null and is_held_meeting_unknown
                        then 'a meeting OpenF1 does not list (removed or re-keyed)'
                    when status = 'unmapped' then 'but it is unmapped now (' || reason || ')'
                    else 'but its mapping is meeting ' || cast(meeting_key as text)
                        || ' / session ' || cast(session_key as text)
                end
            when kind = 'conflict'
                then 'its mapping, meeting ' || cast(meeting_key as text)
                || ' / session ' || cast(session_key as text) || ', is held by race '
                || blocked_by_race_id
            when kind = 'results_disagree'
                then 'its results disagree with OpenF1''s session '
                || cast(session_key as text) || ': ' || coalesce(results_detail, '')
        end as detail,
        case
            when kind = 'unmapped'
                then {{ unmapped_action('reason_action', 'circuit_id', 'invalid_detail') }}
            when kind = 'stale_keys' and status = 'unmapped'
                then 'run racemap run --allow-changes to clear them (or add a reviewed map '
                || 'override to seeds/mapping_overrides.csv if they are right)'
            when kind = 'stale_keys'
                then 'run racemap run --allow-changes to replace them (or add a reviewed map '
                || 'override to seeds/mapping_overrides.csv if they are right)'
            when kind = 'conflict'
                then 'run racemap run --allow-changes: race ' || blocked_by_race_id
                || ' gives them up in the same apply'
            when kind = 'results_disagree'
                then 'check the race''s rows in the results table and its mapping (a wrong '
                || 'mapping, or results that are not this race''s)'
        end as action,
        held_meeting_key,
        held_session_key,
        meeting_key,
        session_key
    from classified
    where kind is not null
),

-- The rows without an id: nothing can map or update them, so a person must give them one (the
-- keys they hold are the build's: the live keys are read by id).
without_id as (
    select
        cast(null as text) as race_id,
        races_without_id.season,
        races_without_id.race_name,
        races_without_id.circuit_id,
        races_without_id.race_start_at,
        'unmapped' as kind,
        'invalid_race' as reason,
        'its row is unusable: ' || races_without_id.invalid_detail || ' (circuit '
        || coalesce(races_without_id.circuit_id, '-') || ', date '
        || coalesce('''' || races_without_id.race_date_text || '''', '-')
        || coalesce(', time ''' || races_without_id.race_time_text || '''', '') || ')'
            as detail,
        {{ unmapped_action(
            'reasons.action', 'races_without_id.circuit_id', 'races_without_id.invalid_detail'
        ) }} as action,
        races_without_id.current_meeting_key as held_meeting_key,
        races_without_id.current_session_key as held_session_key,
        cast(null as integer) as meeting_key,
        cast(null as integer) as session_key
    from races_without_id
    left join reasons
        on reasons.reason = 'invalid_race'
),

final as (
    select * from listed
    union all
    select * from without_id
)

select * from final
