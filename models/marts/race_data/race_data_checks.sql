{#-
    The race data checks: one row per failed check, naming the race, the session, the driver and
    what is wrong; empty when every check passes, and when no race data was synced. Great
    Expectations expects it empty (racemap/checks/race_data.py); a row is attention in the
    verdict of `racemap sync`.
      duplicate_lap       more than one row for a (race, session, driver, lap) in race_laps;
      stints_overlap      a stint starts before the previous one ended (starting on the lap it
                          ended is the tyre change in the pit, not an overlap: Australia 2025, wet);
      lap_not_in_stint    a lap the driver drove lies in none of their stints (only for a driver
                          with stints; a last lap begun and not completed, no lap_duration, is
                          the lap they retired on and needs no tyres);
      pit_off_lap         a pit stop's lap is not a lap the driver drove (sessions with laps);
      lap_missing         laps below a car's highest lap that OpenF1's laps lack
                          (int_race_laps_missing): OpenF1 has lost laps before and restored
                          them when asked, which a sync after the session settled never does
                          unless --refresh;
      final_position      the second signal: the classified cars with a position recorded, in
                          the order of their last position in race_positions, are not in the
                          order of their classified position - the application's result through
                          the driver link for the race, OpenF1's session_result otherwise.
                          Ranking both sides over the same cars keeps out a car disqualified
                          after the race (Hülkenberg, Bahrain 2025) and a car whose positions the
                          recording lacks (Norris, 2024 Singapore: no position row);
      lap_count           a classified car's completed laps in race_laps (its highest lap, less
                          a last one not completed) are not the session result's number_of_laps
                          (sessions with laps);
      driver_not_linked   a car of a race, sprint or qualifying session whose race data carries
                          no driver id of the application, while the application has results
                          for the race: its number is on several result rows (race_driver_links'
                          link_detail) or on none. Practice is not checked (reserve drivers).
-#}
with

race_keys as (
    select * from {{ ref('int_race_data_drivers') }}
),

laps as (
    select * from {{ ref('race_laps') }}
),

stints as (
    select * from {{ ref('race_stints') }}
),

pit_stops as (
    select * from {{ ref('race_pit_stops') }}
),

positions as (
    select * from {{ ref('race_positions') }}
),

links as (
    select * from {{ ref('race_driver_links') }}
),

session_results as (
    select * from {{ ref('stg_openf1__session_results') }}
),

laps_missing as (
    select * from {{ ref('int_race_laps_missing') }}
),

duplicate_laps as (
    select
        session_key,
        driver_number,
        'duplicate_lap' as check_name,
        'lap ' || lap_number || ' has ' || count(*) || ' rows' as detail
    from laps
    group by session_key, driver_number, lap_number
    having count(*) > 1
),

stint_order as (
    select
        session_key,
        driver_number,
        stint_number,
        lap_end,
        lead(stint_number) over driver_stints as next_stint_number,
        lead(lap_start) over driver_stints as next_lap_start
    from stints
    window driver_stints as (partition by session_key, driver_number order by stint_number)
),

overlapping_stints as (
    select
        session_key,
        driver_number,
        'stints_overlap' as check_name,
        'stint ' || next_stint_number || ' starts on lap ' || next_lap_start
        || ', before stint ' || stint_number || ' ended (lap ' || lap_end || ')' as detail
    from stint_order
    where next_lap_start < lap_end
),

last_laps as (
    select distinct on (session_key, driver_number)
        session_key,
        driver_number,
        lap_number,
        lap_duration
    from laps
    order by session_key asc, driver_number asc, lap_number desc
),

laps_needing_tyres as (
    select
        laps.session_key,
        laps.driver_number,
        laps.lap_number
    from laps
    inner join last_laps
        on laps.session_key = last_laps.session_key
        and laps.driver_number = last_laps.driver_number
    where
        laps.lap_number < last_laps.lap_number
        or last_laps.lap_duration is not null
),

drivers_with_stints as (
    select distinct
        session_key,
        driver_number
    from stints
),

uncovered_laps as (
    select
        laps_needing_tyres.session_key,
        laps_needing_tyres.driver_number,
        'lap_not_in_stint' as check_name,
        'laps in no stint: '
        || string_agg(
            cast(laps_needing_tyres.lap_number as text), ', '
            order by laps_needing_tyres.lap_number
        ) as detail
    from laps_needing_tyres
    inner join drivers_with_stints
        on laps_needing_tyres.session_key = drivers_with_stints.session_key
        and laps_needing_tyres.driver_number = drivers_with_stints.driver_number
    where not exists (
            select 1
            from stints
            where
                stints.session_key = laps_needing_tyres.session_key
                and stints.driver_number = laps_needing_tyres.driver_number
                and laps_needing_tyres.lap_number between stints.lap_start and stints.lap_end
        )
    group by laps_needing_tyres.session_key, laps_needing_tyres.driver_number
),

sessions_with_laps as (
    select distinct session_key from laps
),

pit_stops_off_laps as (
    select
        pit_stops.session_key,
        pit_stops.driver_number,
        'pit_off_lap' as check_name,
        'pit stop at ' || to_char(pit_stops.pit_at at time zone 'UTC', 'HH24:MI:SS')
        || ' UTC on lap ' || pit_stops.lap_number || ', a lap the driver did not drive' as detail
    from pit_stops
    inner join sessions_with_laps
        on pit_stops.session_key = sessions_with_laps.session_key
    left join laps
        on pit_stops.session_key = laps.session_key
        and pit_stops.driver_number = laps.driver_number
        and pit_stops.lap_number = laps.lap_number
    where pit_stops.lap_number is not null and laps.lap_number is null
),

missing_laps as (
    select
        session_key,
        driver_number,
        'lap_missing' as check_name,
        case when missing_count = 1 then 'lap ' else 'laps ' end || missing_laps
        || case when missing_count = 1 then ' is' else ' are' end
        || ' not in OpenF1''s laps (up to lap ' || last_lap
        || '): racemap sync --refresh asks OpenF1 again' as detail
    from laps_missing
),

-- The classification each car is checked against.
classified as (
    select
        race_keys.session_key,
        race_keys.session_kind,
        race_keys.driver_number,
        coalesce(
            case when race_keys.session_kind = 'race' then links.app_position end,
            session_results.position
        ) as classified_position,
        session_results.number_of_laps,
        session_results.is_dnf
    from race_keys
    left join links
        on race_keys.race_id = links.race_id
        and race_keys.driver_number = links.car_number
    left join session_results
        on race_keys.session_key = session_results.session_key
        and race_keys.driver_number = session_results.driver_number
    where race_keys.driver_number is not null
),

-- Each car's last known position: a row whose position OpenF1 left null says nothing of it.
final_positions as (
    select distinct on (session_key, driver_number)
        session_key,
        driver_number,
        position
    from positions
    where position is not null
    order by session_key asc, driver_number asc, recorded_at desc
),

-- Both orders over the same cars: classified and with a position recorded.
running_order as (
    select
        classified.session_key,
        classified.driver_number,
        classified.classified_position,
        final_positions.position as final_position,
        rank() over (
            partition by classified.session_key order by classified.classified_position
        ) as classified_rank,
        rank() over (
            partition by classified.session_key order by final_positions.position
        ) as final_rank
    from classified
    inner join final_positions
        on classified.session_key = final_positions.session_key
        and classified.driver_number = final_positions.driver_number
    where classified.classified_position is not null
),

wrong_positions as (
    select
        session_key,
        driver_number,
        'final_position' as check_name,
        'classified ' || classified_position || ' but last position ' || final_position
        || ': place ' || final_rank || ' among the classified cars with positions, not '
        || classified_rank
            as detail
    from running_order
    where final_rank <> classified_rank
),

completed_laps as (
    select
        session_key,
        driver_number,
        lap_number - case when lap_duration is null then 1 else 0 end as laps_completed
    from last_laps
),

wrong_lap_counts as (
    select
        classified.session_key,
        classified.driver_number,
        'lap_count' as check_name,
        'completed ' || coalesce(completed_laps.laps_completed, 0)
        || ' laps, the result says ' || classified.number_of_laps as detail
    from classified
    inner join sessions_with_laps
        on classified.session_key = sessions_with_laps.session_key
    left join completed_laps
        on classified.session_key = completed_laps.session_key
        and classified.driver_number = completed_laps.driver_number
    where
        classified.classified_position is not null
        and classified.number_of_laps is not null
        and coalesce(completed_laps.laps_completed, 0) <> classified.number_of_laps
),

-- The races the application has results for (else no car can be linked, and none is named).
races_with_results as (
    select distinct race_id
    from links
    where app_result_rows > 0
),

unlinked_cars as (
    select
        race_keys.session_key,
        race_keys.driver_number,
        'driver_not_linked' as check_name,
        coalesce(
            links.link_detail,
            'car ' || race_keys.driver_number
            || ' is on no row of the application''s results of the race: its race data has no'
            || ' driver id'
        ) as detail
    from race_keys
    inner join races_with_results
        on race_keys.race_id = races_with_results.race_id
    left join links
        on race_keys.race_id = links.race_id
        and race_keys.driver_number = links.car_number
    where race_keys.driver_number is not null
        and race_keys.driver_id is null
        and race_keys.session_kind in ('race', 'sprint', 'qualifying', 'sprint_qualifying')
),

failures as (
    select * from duplicate_laps
    union all
    select * from overlapping_stints
    union all
    select * from uncovered_laps
    union all
    select * from pit_stops_off_laps
    union all
    select * from missing_laps
    union all
    select * from wrong_positions
    union all
    select * from wrong_lap_counts
    union all
    select * from unlinked_cars
),

final as (
    select
        race_keys.race_id,
        race_keys.session_kind,
        race_keys.session_key,
        race_keys.driver_id,
        failures.driver_number,
        race_keys.name_acronym,
        failures.check_name,
        failures.detail
    from failures
    {{ race_data_join('failures') }}
)

select * from final
