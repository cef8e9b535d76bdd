{#-
    One row per race id, usable or not: rows without an id are left out (nothing could name or
    update them), a duplicated id becomes one invalid row, and invalid_detail says what is wrong
    with a race's own row (stg_app__races). is_invalid races are unmapped with reason invalid_race.
-#}
with

races as (
    select * from {{ ref('stg_app__races') }}
),

counted as (
    select
        *,
        count(*) over (partition by race_id) as rows_with_id
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
