{#-
    The lookups of the original service as SQL functions for the application (run on-run-end):
        racemap.meeting_key_for_race(race_id text) -> integer
        racemap.session_key_for_race(race_id text) -> integer
        racemap.session_key_for_race(race_id text, kind text) -> integer
        racemap.race_for_meeting(meeting_key integer) -> text
        racemap.race_laps(race_id text, session_kind text default 'race') -> table
    Keys come from the races table; a race without them raises 'not mapped: <reason>'. The
    two-argument form gives any session of the race's weekend by kind (practice_1, practice_2,
    practice_3, sprint_qualifying, sprint, qualifying, race) from racemap.race_openf1_sessions,
    for the meeting the race holds; no such session (or only a cancelled one) raises
    'not mapped: ...' too. racemap.race_laps gives the laps of a race's session from the mart
    racemap.race_laps (the race data of `racemap sync`), by driver and lap; a race or kind
    without a session raises as session_key_for_race does, no sync yet raises 'no race data'.
    The macro renders the DDL as the hook's SQL, which dbt runs in the hook's own transaction
    (a statement called while the hook renders ran outside it, and dbt's ROLLBACK after it made
    PostgreSQL warn "there is no transaction in progress" on every build).
-#}
{% macro create_lookup_functions() %}
    {%- if execute and flags.WHICH in ('build', 'run') -%}
    {%- set races = adapter.get_relation(
        database=target.database, schema=var('races_schema'), identifier=var('races_table')) -%}
    {%- if races is not none -%}
    {#- Schema and table only: a function naming its database fails in a copy or a restore of
        the database under another name ("cross-database references are not implemented"). -#}
    {%- set races = races.include(database=false) -%}
    {%- set id = adapter.quote(var('race_id_column')) -%}
    {#- The table's name in an error message: a string literal and a RAISE format inside the
        dollar-quoted bodies, so its single quotes are doubled and its % written %%. -#}
    {%- set races_text = races | string | replace("'", "''") | replace('%', '%%') -%}
    {%- if '$fn$' in (races | string) or '$fn$' in id -%}
        {{ exceptions.raise_compiler_error("a races table or column name holds '$fn$'") }}
    {%- endif -%}
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
                raise exception 'no race with id % in {{ races_text }}', p_race_id;
            end if;
            if meeting_key is null or session_key is null then
                select case when m.status = 'mapped' then 'not_applied' else m.reason end
                into v_reason
                from racemap.race_openf1_mapping as m where m.race_id = p_race_id;
                raise exception 'not mapped: % (race %)', coalesce(v_reason, 'not_yet_mapped'), p_race_id;
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

        {#- Volatile, as race_laps below: each of its statements takes its own snapshot once it
            holds its locks. A stable function reads with its caller's snapshot, taken before a
            build's swap of race_openf1_sessions committed: a lookup that waited on the swap
            read the new table as empty ('not mapped: no sprint session'). -#}
        create or replace function racemap.session_key_for_race(p_race_id text, p_kind text)
        returns integer language plpgsql volatile as $fn$
        declare
            v_meeting_key integer;
            v_session_key integer;
            v_cancelled boolean;
        begin
            if p_kind is null or p_kind not in ('practice_1', 'practice_2', 'practice_3',
                    'sprint_qualifying', 'sprint', 'qualifying', 'race') then
                raise exception 'unknown session kind %: one of practice_1, practice_2, practice_3, sprint_qualifying, sprint, qualifying, race',
                    p_kind;
            end if;
            select k.meeting_key, k.session_key into v_meeting_key, v_session_key
            from racemap.race_keys(p_race_id) as k;
            if p_kind = 'race' then
                return v_session_key;
            end if;
            v_session_key := null;
            select s.session_key, s.is_cancelled into v_session_key, v_cancelled
            from racemap.race_openf1_sessions as s
            where s.meeting_key = v_meeting_key and s.session_kind = p_kind
            order by s.is_cancelled, s.starts_at
            limit 1;
            if v_session_key is null then
                raise exception 'not mapped: no % session in meeting % (race %)',
                    p_kind, v_meeting_key, p_race_id;
            end if;
            if v_cancelled then
                raise exception 'not mapped: cancelled, the % session % of meeting % (race %)',
                    p_kind, v_session_key, v_meeting_key, p_race_id;
            end if;
            return v_session_key;
        end
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

        drop function if exists racemap.race_laps(text, text);
        create function racemap.race_laps(p_race_id text, p_session_kind text default 'race')
        returns table (
            race_id text, session_kind text, meeting_key integer, session_key integer,
            driver_id text, driver_number integer, name_acronym text, lap_number integer,
            lap_duration double precision, duration_sector_1 double precision,
            duration_sector_2 double precision, duration_sector_3 double precision,
            i1_speed double precision, i2_speed double precision, st_speed double precision,
            date_start timestamptz, is_pit_out_lap boolean
        )
        language plpgsql volatile as $fn$
        #variable_conflict use_column
        begin
            perform racemap.session_key_for_race(p_race_id, p_session_kind);
            if to_regclass('racemap.race_laps') is null then
                raise exception 'no race data: run racemap sync';
            end if;
            return query
            select l.race_id, l.session_kind, l.meeting_key, l.session_key, l.driver_id,
                l.driver_number, l.name_acronym, l.lap_number, l.lap_duration,
                l.duration_sector_1, l.duration_sector_2, l.duration_sector_3,
                l.i1_speed, l.i2_speed, l.st_speed, l.date_start, l.is_pit_out_lap
            from racemap.race_laps as l
            where l.race_id = p_race_id and l.session_kind = p_session_kind
            order by l.driver_number, l.lap_number;
        end
        $fn$;
    {%- endif -%}
    {%- endif -%}
{% endmacro %}
