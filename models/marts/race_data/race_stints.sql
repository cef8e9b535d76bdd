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
        race_keys.race_id,
        race_keys.session_kind,
        race_keys.meeting_key,
        race_keys.session_key,
        race_keys.driver_id,
        stints.driver_number,
        race_keys.name_acronym,
        stints.stint_number,
        stints.compound,
        stints.lap_start,
        stints.lap_end,
        stints.lap_end - stints.lap_start + 1 as lap_count,
        stints.tyre_age_at_start
    from stints
    inner join race_keys
        on stints.session_key = race_keys.session_key
        and stints.driver_number = race_keys.join_driver_number
)

select * from final
