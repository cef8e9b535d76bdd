{#-
    Gaps during a race: one row per (race_id, session_kind, driver_number, recorded_at). A gap is
    in seconds, or in laps for a lapped car ("+1 LAP"); both are null where OpenF1 sent an empty
    string or nothing (the leader's gap, the first seconds of a session); the text as sent is
    kept for anything else.
-#}
with

intervals as (
    select * from {{ ref('stg_openf1__intervals') }}
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
        intervals.driver_number,
        race_keys.name_acronym,
        intervals.recorded_at,
        intervals.gap_to_leader_seconds,
        intervals.gap_to_leader_laps,
        intervals.gap_to_leader_text,
        intervals.interval_seconds,
        intervals.interval_laps,
        intervals.interval_text
    from intervals
    inner join race_keys
        on intervals.session_key = race_keys.session_key
        and intervals.driver_number = race_keys.join_driver_number
)

select * from final
