{#-
    The lookups of the original service as SQL functions for the application (run on-run-end):
        racemap.meeting_key_for_race(race_id text) -> integer
        racemap.session_key_for_race(race_id text) -> integer
        racemap.race_for_meeting(meeting_key integer) -> text
    Keys come from the races table; a race without them raises 'not mapped: <reason>'.
-#}
{% macro create_lookup_functions() %}
    {%- if execute and flags.WHICH in ('build', 'run') -%}
    {%- set races = adapter.get_relation(
        database=target.database, schema=var('races_schema'), identifier=var('races_table')) -%}
    {%- if races is not none -%}
    {%- set id = adapter.quote(var('race_id_column')) -%}
    {% call statement('create_lookup_functions') %}
        create schema if not exists racemap;

        create or replace function racemap.race_keys(p_race_id text,
            out meeting_key integer, out session_key integer)
        language plpgsql stable as $fn$
        declare
            v_found boolean;
            v_reason text;
        begin
            select true, r.openf1_meeting_key, r.openf1_session_key
            into v_found, meeting_key, session_key
            from {{ races }} as r where cast(r.{{ id }} as text) = p_race_id;
            if v_found is null then
                raise exception 'no race with id %', p_race_id;
            end if;
            if meeting_key is null or session_key is null then
                select case when m.status = 'mapped' then 'not_applied' else m.reason end
                into v_reason
                from racemap.race_openf1_mapping as m where m.race_id = p_race_id;
                raise exception 'not mapped: %', coalesce(v_reason, 'not_yet_mapped');
            end if;
        end
        $fn$;

        create or replace function racemap.meeting_key_for_race(p_race_id text)
        returns integer language sql stable as $fn$
            select meeting_key from racemap.race_keys(p_race_id)
        $fn$;

        create or replace function racemap.session_key_for_race(p_race_id text)
        returns integer language sql stable as $fn$
            select session_key from racemap.race_keys(p_race_id)
        $fn$;

        create or replace function racemap.race_for_meeting(p_meeting_key integer)
        returns text language plpgsql stable as $fn$
        declare
            v_race_id text;
        begin
            select cast(r.{{ id }} as text) into v_race_id
            from {{ races }} as r where r.openf1_meeting_key = p_meeting_key;
            if v_race_id is null then
                raise exception 'not mapped: no race holds meeting %', p_meeting_key;
            end if;
            return v_race_id;
        end
        $fn$;
    {% endcall %}
    {%- endif -%}
    {%- endif -%}
{% endmacro %}
