{#-
    OpenF1 session_result, one row per car per session (practice, qualifying, sprint, race), the
    rows OpenF1 still lists. duration and gap_to_leader are kept as sent (jsonb): a number for a
    race, a 3-element array (Q1, Q2, Q3) for qualifying, a string such as "+1 LAP" for a lapped
    car's gap (data/README.md). position is null when the car was not classified; three
    disqualifications carry no dsq flag (2023 United States GP cars 44 and 16, 2024 Belgian GP
    car 63). q1_seconds ... q3_seconds: a qualifying's duration array, one best lap per part.
    racemap sync builds it again too (race_classification reads it).
-#}
with

source as (
    select * from {{ source('openf1', 'openf1_session_results') }}
),

renamed as (
    select
        session_key,
        driver_number,
        meeting_key,
        position,
        number_of_laps,
        points,
        coalesce(dnf, false) as is_dnf,
        coalesce(dns, false) as is_dns,
        coalesce(dsq, false) as is_dsq,
        duration,
        gap_to_leader,
        case
            when jsonb_typeof(duration) = 'number' then cast(duration #>> '{}' as numeric)
        end as duration_seconds,
        case
            when jsonb_typeof(gap_to_leader) = 'number'
                then cast(gap_to_leader #>> '{}' as numeric)
        end as gap_to_leader_seconds,
        {{ openf1_gap_laps('gap_to_leader') }} as gap_to_leader_laps,
        {%- for part in ['q1', 'q2', 'q3'] %}
        case
            when jsonb_typeof(duration) = 'array'
                then cast(duration ->> {{ loop.index0 }} as numeric)
        end as {{ part }}_seconds,
        {%- endfor %}
        position is not null as is_classified,
        source = 'live' as is_live,
        fetched_at,
        loaded_at
    from source
    where removed_at is null
)

select * from renamed
