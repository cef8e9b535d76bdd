{#- Mapped races whose keys in the races table differ from the mapping: what apply will write. -#}
with

mapping as (
    select * from {{ ref('race_openf1_mapping') }}
),

races as (
    select * from {{ ref('stg_app__races') }}
),

updates as (
    select
        mapping.race_id,
        races.current_meeting_key,
        races.current_session_key,
        mapping.meeting_key,
        mapping.session_key,
        mapping.race_name,
        mapping.method,
        -- fill: the race holds no key yet; change: it holds others (applied only when allowed).
        case
            when races.current_meeting_key is null and races.current_session_key is null
                then 'fill'
            else 'change'
        end as action,
        mapping.season
    from mapping
    inner join races
        on mapping.race_id = races.race_id
    where mapping.status = 'mapped'
        and (
            races.current_meeting_key is distinct from mapping.meeting_key
            or races.current_session_key is distinct from mapping.session_key
        )
)

select * from updates
