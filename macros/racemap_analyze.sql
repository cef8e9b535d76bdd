{#-
    The post-hook of every model (dbt_project.yml): a table is analyzed once built, so the models
    that read it later in the same build are planned on its real row count and value
    distributions. Without statistics (autovacuum analyzes a new table a minute later, if at
    all) the planner guesses a few rows for a filtered table and picks nested loops, quadratic
    in the races. A view has no statistics of its own: nothing to do.
-#}
{% macro racemap_analyze() -%}
    {%- if model.config.materialized == 'table' -%}
        analyze {{ this }}
    {%- endif -%}
{%- endmacro %}
