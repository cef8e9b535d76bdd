{#-
    Coverage of the mapping per season within OpenF1's coverage (season >= openf1_first_season):
    of the races OpenF1 should know (the season's OpenF1 data was loaded, the race is mapped or
    in the past, and it was not called off or accepted as unmapped by a reviewed skip override),
    the share that is mapped. Races at a circuit missing from the circuit map and races whose own
    row is unusable count: they are gaps. Validated by Great Expectations against the
    coverage_threshold var; read by the mapping report.
-#}
with

mapping as (
    select * from {{ ref('race_openf1_mapping') }}
),

races as (
    select
        race_id,
        season,
        status,
        reason,
        is_season_loaded,
        is_season_loaded
        and not coalesce(is_skipped_by_override, false)
        and coalesce(reason, '') not in ('cancelled', 'not_yet_run')
        and (status = 'mapped' or race_start_at <= {{ racemap_as_of() }} or race_start_at is null)
            as is_expected
    from mapping
    where season >= {{ var('openf1_first_season') | int }}
),

final as (
    select
        season,
        count(*) as races,
        count(*) filter (where is_expected) as races_expected,
        count(*) filter (where status = 'mapped') as mapped,
        count(*) filter (where status = 'unmapped') as unmapped,
        count(*) filter (where status = 'unmapped' and is_expected) as unmapped_expected,
        bool_or(is_season_loaded) as is_season_loaded,
        case
            when count(*) filter (where is_expected) > 0
                then round(
                    cast(count(*) filter (where status = 'mapped' and is_expected) as numeric)
                    / count(*) filter (where is_expected),
                    4
                )
        end as coverage
    from races
    group by season
)

select * from final
