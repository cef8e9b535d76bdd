{#-
    The race data marts' keys: the application's race and driver of a row of an OpenF1 endpoint
    (int_race_data_drivers, imported as the CTE race_keys), the same columns and join in each.
-#}
{% macro race_data_session_keys(keys='race_keys') -%}
{{ keys }}.race_id,
        {{ keys }}.session_kind,
        {{ keys }}.meeting_key,
        {{ keys }}.session_key
{%- endmacro %}

{% macro race_data_driver_keys(data) -%}
{{ race_data_session_keys() }},
        race_keys.driver_id,
        {{ data }}.driver_number,
        race_keys.name_acronym,
        race_keys.team_colour
{%- endmacro %}

{#- driver_number: what names the car (default the endpoint's driver_number); -1 joins the
    session's own row (int_race_data_drivers), for data about no car. -#}
{% macro race_data_join(data, driver_number=none, keys='race_keys') -%}
inner join race_keys{% if keys != 'race_keys' %} as {{ keys }}{% endif %}
        on {{ data }}.session_key = {{ keys }}.session_key
        and {{ driver_number or data ~ '.driver_number' }} = {{ keys }}.join_driver_number
{%- endmacro %}
