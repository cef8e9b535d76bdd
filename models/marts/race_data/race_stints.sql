{#-
    Tyre stints: one row per (race_id, session_kind, driver_number, stint_number). lap_start and
    lap_end are null where OpenF1 sends none (a car that never completed a lap); lap_count is
    then null too.
-#}
with

stints as (
    select * from {{ ref('stg_openf1__stints') }}
),

race_keys as (
    select * from {{ ref('int_race_data_drivers') }}
),

final as (
    select
        {{ race_data_driver_keys('stints') }},
        stints.stint_number,
        stints.compound,
        stints.lap_start,
        stints.lap_end,
        stints.lap_end - stints.lap_start + 1 as lap_count,
        stints.tyre_age_at_start
    from stints
    {{ race_data_join('stints') }}
)

select * from final
