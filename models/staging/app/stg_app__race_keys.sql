{#-
    The OpenF1 keys each row of the application's races table holds now, by race id: no parsing,
    so races_needing_attention reads the keys as they are after the apply or a hand edit without
    typing every race again (stg_app__races does that once per build, for int_races_checked).
    A view of the function app_race_keys() (its pre-hook, macro app_race_keys_function): a view
    selecting from the table itself would tie it to the table and the columns it reads, and the
    application could neither drop nor retype them after a run.
-#}
-- depends_on: {{ source('app', 'races') }}
with

source as (
    select * from {{ this.schema }}.app_race_keys()
),

renamed as (
    select
        race_id,
        current_meeting_key,
        current_session_key
    from source
)

select * from renamed
