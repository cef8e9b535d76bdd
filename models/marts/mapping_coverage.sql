{#-
    Coverage of the mapping per season within OpenF1's coverage (season >= openf1_first_season):
    of the races for which the loaded OpenF1 data has a Grand Prix race session (not cancelled)
    at their circuit in that season, the share that is mapped. Validated by Great Expectations
    against the coverage_threshold var; read by the mapping report.
-#}
with

mapping as (
    select * from {{ ref('race_openf1_mapping') }}
),

race_sessions as (
    select * from {{ ref('int_openf1__race_sessions') }}
),

season_circuits as (
    select distinct
        season,
        circuit_key
    from race_sessions
    where not is_cancelled
),

races as (
    select
        mapping.race_id,
        mapping.season,
        mapping.status,
        mapping.reason,
        season_circuits.circuit_key is not null as has_race_session
    from mapping
    left join season_circuits
        on mapping.season = season_circuits.season
        and mapping.circuit_key = season_circuits.circuit_key
    where mapping.season >= {{ var('openf1_first_season') | int }}
),

final as (
    select
        season,
        count(*) as races,
        count(*) filter (where has_race_session) as races_with_race_session,
        count(*) filter (where status = 'mapped') as mapped,
        count(*) filter (where status = 'mapped' and has_race_session) as mapped_with_race_session,
        count(*) filter (where status = 'unmapped') as unmapped,
        count(*) filter (where status = 'unmapped' and has_race_session)
            as unmapped_with_race_session,
        case
            when count(*) filter (where has_race_session) > 0
                then round(
                    cast(count(*) filter (where status = 'mapped' and has_race_session) as numeric)
                    / count(*) filter (where has_race_session),
                    4
                )
        end as coverage
    from races
    group by season
)

select * from final
