{#- "Now" for the not_yet_run rule: the as_of var (ISO timestamp) when given, else now(). -#}
{% macro racemap_as_of() -%}
    {%- set as_of = var('as_of') -%}
    {%- if as_of -%}
        {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9:.]+)?(Z|[+-][0-9:]+)?$', as_of | string) -%}
            {{ exceptions.raise_compiler_error("var as_of must be an ISO date or timestamp, got " ~ as_of) }}
        {%- endif -%}
        cast('{{ as_of }}' as timestamptz)
    {%- else -%}
        now()
    {%- endif -%}
{%- endmacro %}

{#- The matching tolerance as an interval (var match_tolerance_hours, a number). -#}
{% macro racemap_tolerance() -%}
    (interval '1 hour' * {{ var('match_tolerance_hours') | float }})
{%- endmacro %}

{#- A whole number read from a column of the application's (user input): an integer as it is,
    text or numeric holding one ('4', ' 4 ', '4.0') cast, anything else ('x', '', '-1', '4.5')
    null, so one bad value is a row without that number, not a failed build. -#}
{% macro racemap_whole_number(expression) -%}
    case
        when trim(cast({{ expression }} as text)) ~ '^[0-9]{1,9}([.]0*)?$'
            then cast(cast(trim(cast({{ expression }} as text)) as numeric) as integer)
    end
{%- endmacro %}

{#- What to do about an unmapped race: its reason's action (seed unmapped_reasons) with the
    race's circuit id and its row's detail in the {circuit_id} and {detail} placeholders. -#}
{% macro unmapped_action(action, circuit_id, detail) -%}
    replace(
        replace({{ action }}, '{circuit_id}', coalesce({{ circuit_id }}, '?')),
        '{detail}',
        coalesce({{ detail }}, '')
    )
{%- endmacro %}
