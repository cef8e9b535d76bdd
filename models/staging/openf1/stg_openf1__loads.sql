{#- racemap's audit of OpenF1 fetches (raw.openf1_loads): one row per (endpoint, season) fetch. -#}
with

source as (
    select * from {{ source('openf1', 'openf1_loads') }}
),

renamed as (
    select
        load_id,
        run_id,
        endpoint,
        status,
        season,
        http_status,
        requests,
        rows_received,
        rows_loaded,
        rows_rejected,
        url like 'snapshot:%' as is_snapshot,
        started_at,
        finished_at
    from source
)

select * from renamed
