with

source as (
    select * from {{ source('openf1', 'openf1_sessions') }}
),

renamed as (
    select
        session_key,
        meeting_key,
        circuit_key,
        trim(session_name) as session_name,
        trim(session_type) as session_type,
        year as season,
        -- The Grand Prix race: never a Sprint (whose session_type is also 'Race').
        lower(trim(session_name)) = 'race' as is_grand_prix_race,
        coalesce(is_cancelled, false) as is_cancelled,
        date_start as started_at,
        date_end as ended_at,
        loaded_at
    from source
    -- A record OpenF1 no longer lists is kept in raw (removed_at) but leaves staging.
    where removed_at is null
)

select * from renamed
