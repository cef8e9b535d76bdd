{#-
    Races whose keys in the races table differ from their mapping: what the apply writes.
    fill: the race holds no key yet; change: it holds other keys (stale, swapped, set by hand);
    clear: it holds keys but is unmapped now (its meeting was called off or removed). change and
    clear are applied only with --allow-changes. A race whose season's OpenF1 data was never
    loaded, or whose own row is unusable (invalid_race), is left as it is: nothing can judge it.
-#}
with

mapping as (
    select * from {{ ref('race_openf1_mapping') }}
),

races as (
    select * from {{ ref('int_races_checked') }}
),

differing as (
    select
        mapping.race_id,
        races.current_meeting_key,
        races.current_session_key,
        mapping.meeting_key,
        mapping.session_key,
        mapping.race_name,
        mapping.method,
        mapping.status,
        mapping.reason,
        mapping.season
    from mapping
    inner join races
        on mapping.race_id = races.race_id
    where (
        races.current_meeting_key is distinct from mapping.meeting_key
        or races.current_session_key is distinct from mapping.session_key
    )
    and (mapping.status = 'mapped' or mapping.is_season_loaded)
    and coalesce(mapping.reason, '') <> 'invalid_race'
),

final as (
    select
        race_id,
        current_meeting_key,
        current_session_key,
        meeting_key,
        session_key,
        race_name,
        method,
        case
            when current_meeting_key is null and current_session_key is null then 'fill'
            when status = 'unmapped' then 'clear'
            else 'change'
        end as action,
        reason,
        season
    from differing
)

select * from final
