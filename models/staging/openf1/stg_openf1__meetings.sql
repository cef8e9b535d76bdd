with

source as (
    select * from {{ source('openf1', 'openf1_meetings') }}
),

renamed as (
    select
        meeting_key,
        circuit_key,
        country_key,
        meeting_name,
        trim(meeting_official_name) as meeting_official_name,
        circuit_short_name,
        location,
        country_code,
        country_name,
        year as season,
        coalesce(is_cancelled, false) as is_flagged_cancelled,
        -- is_cancelled is flipped by hand and may lag; the official name says "CALLED OFF".
        coalesce(is_cancelled, false)
        or upper(trim(meeting_official_name)) like 'CALLED OFF%' as is_cancelled,
        date_start as started_at,
        date_end as ended_at,
        loaded_at
    from source
    -- A record OpenF1 no longer lists is kept in raw (removed_at) but leaves staging.
    where removed_at is null
)

select * from renamed
