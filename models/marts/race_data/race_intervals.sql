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
        {{ race_data_driver_keys('intervals') }},
        intervals.recorded_at,
        intervals.gap_to_leader_seconds,
        intervals.gap_to_leader_laps,
        intervals.gap_to_leader_text,
        intervals.interval_seconds,
        intervals.interval_laps,
        intervals.interval_text
    from intervals
    {{ race_data_join('intervals') }}
)

select * from final
