{#- Custom schemas are used as given (racemap, racemap_staging, ...), not prefixed with the
    target schema: the marts' schema name is part of the contract. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
