{#-
    Seasons whose OpenF1 schedule was loaded: a fetch of meetings or sessions succeeded with
    records (live or from the snapshot). A season OpenF1 had nothing for (404 "No results
    found.", or past the snapshot's end) is not loaded: its races cannot need a person yet.
-#}
with

loads as (
    select * from {{ ref('stg_openf1__loads') }}
),

loaded as (
    select
        season,
        max(finished_at) as last_loaded_at
    from loads
    where status = 'ok'
        and rows_received > 0
        and endpoint in ('meetings', 'sessions')
    group by season
)

select * from loaded
