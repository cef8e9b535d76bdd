{#-
    OpenF1 intervals: one row per (session_key, driver_number, date), unique by raw's primary key;
    rows OpenF1 no longer lists are left out. gap_to_leader and interval come as sent (jsonb): a
    number of seconds, a string such as "+1 LAP" for a lapped car, an empty string, or null. Each
    is split (macro openf1_gap_columns) into seconds (when a number) and laps (the n of
    "+n LAP(S)"); an empty string or null gives neither; the text is kept for what is neither
    (null for an empty string).
-#}
with

source as (
    select * from {{ source('openf1', 'openf1_intervals') }}
),

renamed as (
    select
        session_key,
        driver_number,
        date as recorded_at,
        meeting_key,
        {{ openf1_gap_columns('gap_to_leader') }},
        {{ openf1_gap_columns('interval') }},
        fetched_at
    from source
    where removed_at is null
)

select * from renamed
