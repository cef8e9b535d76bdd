{#-
    The OpenF1 keys each row of the application's races table holds now, by race id: no parsing,
    so races_needing_attention reads the keys as they are after the apply or a hand edit without
    typing every race again (stg_app__races does that once per build, for int_races_checked).
    A view (the keys as they are now) that reads only its three columns: PostgreSQL ties a view
    to each column it selects, and a select * held every column of the application's table, so
    the application could neither drop nor retype any of them after a run.
-#}
with

source as (
    select
        {{ adapter.quote(var('race_id_column')) }},
        openf1_meeting_key,
        openf1_session_key
    from {{ source('app', 'races') }}
),

renamed as (
    select
        cast({{ adapter.quote(var('race_id_column')) }} as text) as race_id,
        openf1_meeting_key as current_meeting_key,
        openf1_session_key as current_session_key
    from source
)

select * from renamed
