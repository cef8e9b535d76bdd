{#-
    The race data marts' keys: the application's race and driver of a row of an OpenF1 endpoint
    (int_race_data_drivers, imported as the CTE race_keys), the same columns and join in each.
-#}
{% macro race_data_driver_keys(data) -%}
race_keys.race_id,
        race_keys.session_kind,
        race_keys.meeting_key,
        race_keys.session_key,
        race_keys.driver_id,
        {{ data }}.driver_number,
        race_keys.name_acronym,
        race_keys.team_colour
{%- endmacro %}

{% macro race_data_driver_join(data) -%}
inner join race_keys
        on {{ data }}.session_key = race_keys.session_key
        and {{ data }}.driver_number = race_keys.join_driver_number
{%- endmacro %}
