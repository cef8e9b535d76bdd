{#-
    One row per race id, usable or not: rows without an id are left out (nothing could map or
    update them; int_races_without_id lists them for the reports), a duplicated id becomes one
    invalid row, and invalid_detail says what is wrong with a race's own row (stg_app__races).
    is_invalid races are unmapped with reason invalid_race.
    A table (analyzed once built: dbt_project.yml): the matching joins read it with its real row
    count and the share of invalid races, where estimates over a view of the parsed rows fall to
    a few rows and the planner picks nested loops, quadratic in the races; and the races are
    parsed once per build, not once per query. The keys it holds are the build's:
    races_needing_attention reads the live ones (stg_app__race_keys).
-#}

with

races as (
    select * from {{ ref('stg_app__races') }}
),

-- Each id's rows counted in the order deduplicated keeps the first of them: one sort serves both.
counted as (
    select
        *,
        count(*) over (
            partition by race_id
            order by race_start_at nulls last, current_meeting_key nulls last
            rows between unbounded preceding and unbounded following
        ) as rows_with_id
    from races
    where race_id is not null
),

deduplicated as (
    select distinct on (race_id) *
    from counted
    order by race_id, race_start_at nulls last, current_meeting_key nulls last
),

final as (
    select
        race_id,
        circuit_id,
        race_name,
        current_meeting_key,
        current_session_key,
        case
            when rows_with_id > 1 then 'duplicate id (' || rows_with_id || ' rows)'
            else invalid_detail
        end as invalid_detail,
        rows_with_id > 1 or invalid_detail is not null as is_invalid,
        season,
        race_date,
        case when rows_with_id = 1 and invalid_detail is null then race_start_at end
            as race_start_at
    from deduplicated
)

select * from final
