{#-
    The rows of the application's races table that have no id. int_races_checked leaves them out
    (nothing can map, update or look up a race without an id: the mapping, the apply and the
    crosswalk are keyed by it), so they are listed here for the reports instead of vanishing:
    each is an invalid_race with the detail 'no id' (stg_app__races), named by its other fields.
    unmapped_races and races_needing_attention add them with a null race_id; the run's summary
    counts them.
-#}

with

races as (
    select * from {{ ref('stg_app__races') }}
),

final as (
    select
        circuit_id,
        race_name,
        season,
        race_date_text,
        race_time_text,
        race_start_at,
        current_meeting_key,
        current_session_key,
        invalid_detail
    from races
    where race_id is null
)

select * from final
