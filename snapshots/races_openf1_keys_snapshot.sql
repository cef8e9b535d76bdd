{#- Type-2 history of the keys each race holds, taken at every build (before the apply that
    follows it): with racemap.mapping_history it shows when a key changed, and to what. -#}
{% snapshot races_openf1_keys_snapshot %}

{{
    config(
        unique_key='race_id',
        strategy='check',
        check_cols=['current_meeting_key', 'current_session_key'],
        invalidate_hard_deletes=True,
    )
}}

select
    race_id,
    current_meeting_key,
    current_session_key
from {{ ref('stg_app__races') }}

{% endsnapshot %}
