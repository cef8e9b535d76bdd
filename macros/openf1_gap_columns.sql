{#-
    An OpenF1 gap as sent (jsonb: a number of seconds, a string such as "+1 LAP" for a lapped
    car, an empty string, or null) split into <gap>_seconds (when a number), <gap>_laps (the n
    of "+n LAP(S)") and <gap>_text (the text as sent, trimmed; null when empty).
-#}
{% macro openf1_gap_columns(gap) -%}
case
            when jsonb_typeof({{ gap }}) = 'number'
                then cast({{ gap }} #>> '{}' as double precision)
        end as {{ gap }}_seconds,
        {{ openf1_gap_laps(gap) }} as {{ gap }}_laps,
        nullif(trim({{ gap }} #>> '{}'), '') as {{ gap }}_text
{%- endmacro %}

{#- The n of an OpenF1 gap "+n LAP" / "+n LAPS" (a lapped car), else null. -#}
{% macro openf1_gap_laps(gap) -%}
cast(substring({{ gap }} #>> '{}' from '^\+\s*([0-9]+)\s*LAPS?$') as integer)
{%- endmacro %}
