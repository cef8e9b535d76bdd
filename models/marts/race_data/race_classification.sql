{#-
    The session's result as OpenF1 classified it (session_result, loaded by racemap run), for
    every synced session of a mapped race: one row per (race_id, session_kind, driver_number).
    position is null for a car not classified; a car retired late in the race can still be
    classified (is_dnf and a position). Race and sprint times are seconds, as are qualifying's
    three best laps per car (q1_seconds ... q3_seconds); duration and gap_to_leader as sent.
    The race page shows it and orders its tyre stints by it.
-#}
with

session_results as (
    select * from {{ ref('stg_openf1__session_results') }}
),

race_keys as (
    select * from {{ ref('int_race_data_drivers') }}
),

final as (
    select
        {{ race_data_driver_keys('session_results') }},
        session_results.position,
        session_results.number_of_laps,
        session_results.points,
        session_results.duration_seconds,
        session_results.gap_to_leader_seconds,
        session_results.gap_to_leader_laps,
        session_results.q1_seconds,
        session_results.q2_seconds,
        session_results.q3_seconds,
        session_results.duration,
        session_results.gap_to_leader,
        case
            when session_results.is_dsq then 'disqualified'
            when session_results.is_dns then 'did_not_start'
            when session_results.is_dnf then 'retired'
            when session_results.is_classified then 'finished'
            else 'not_classified'
        end as result_status,
        session_results.is_classified,
        session_results.is_dnf,
        session_results.is_dns,
        session_results.is_dsq
    from session_results
    {{ race_data_join('session_results') }}
)

select * from final
