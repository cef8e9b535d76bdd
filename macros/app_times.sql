{#-
    A time of day of the application's races table, read by one rule wherever it is written:
    the time column, or the time a date column carries (stg_app__races). ``parts`` names the
    columns <parts>_hour, <parts>_minute, <parts>_second and <parts>_offset; the date is
    date_year, date_month, date_day.
-#}

{#- The offset as written ('Z', 'z', 'UTC', '+02:00', '-5', or null), UTC's spelled +00:00. -#}
{% macro app_utc_offset(offset) -%}
    case when {{ offset }} in ('Z', 'z', 'UTC') then '+00:00' else {{ offset }} end
{%- endmacro %}

{#- Whether the parts are a time of day: 0-23 h, 0-59 min, under 60 s, an offset of 15 h at
    most. -#}
{% macro app_time_is_valid(parts) -%}
    {{ parts }}_hour between 0 and 23
    and {{ parts }}_minute between 0 and 59
    and {{ parts }}_second < 60
    and coalesce(
        abs(cast(substring({{ parts }}_offset from '^[+-]([0-9]{1,2})') as integer)) <= 15, true
    )
{%- endmacro %}

{#- The moment the date and the parts give: the offset honoured (ISO 8601: +02:00 is two
    hours east of UTC), UTC without one. -#}
{% macro app_start_at(parts) -%}
    cast(
        to_char(make_date(date_year, date_month, date_day), 'YYYY-MM-DD')
        || ' ' || lpad(cast({{ parts }}_hour as text), 2, '0')
        || ':' || lpad(cast({{ parts }}_minute as text), 2, '0')
        || ':' || cast({{ parts }}_second as text)
        || coalesce({{ parts }}_offset, '+00:00')
        as timestamptz
    )
{%- endmacro %}
