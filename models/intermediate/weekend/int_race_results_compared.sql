{#-
    The results cross-check: for every race with a proposed Grand Prix race session, the car
    number at each position classified on both sides, the application's results
    (stg_app__results) against OpenF1's session_result of that session.
      agree       every position classified on both sides holds the same car number;
      disagree    at least one does not (results_detail names the first three), or no position
                  is classified on both sides although each side has some;
      no_results  one side has no classified position yet (or the application has no results
                  table).
    A position classified on one side only is not a disagreement: OpenF1 gives a position to a
    few retired cars the application leaves unclassified (Monaco 2023 car 20, 70 of 78 laps),
    and results_detail of an agreeing race says so. Unclassified cars (null position) are never
    compared: three disqualifications have no dsq flag in OpenF1 but a null position on both sides.
    A table: compared once per build, not once for each of its tests and for race_openf1_mapping.
-#}

with

matched as (
    select * from {{ ref('int_races_matched_to_meetings') }}
),

app_results as (
    select * from {{ ref('stg_app__results') }}
),

session_results as (
    select * from {{ ref('stg_openf1__session_results') }}
),

-- NOT MATERIALIZED: each reference reads the table itself, with its statistics (a CTE scan has
-- none: the joins below were estimated at millions of rows and JIT-compiled at length).
race_sessions as not materialized (
    select
        race_id,
        proposed_session_key as session_key
    from matched
    where proposed_session_key is not null
),

app_positions as not materialized (
    select
        race_id,
        position,
        car_number
    from app_results
    where is_classified
),

openf1_positions as not materialized (
    select
        session_key,
        position,
        driver_number
    from session_results
    where is_classified
),

app_side as (
    select
        race_sessions.race_id,
        race_sessions.session_key,
        app_positions.position,
        app_positions.car_number
    from race_sessions
    inner join app_positions
        on race_sessions.race_id = app_positions.race_id
),

openf1_side as (
    select
        race_sessions.race_id,
        race_sessions.session_key,
        openf1_positions.position,
        openf1_positions.driver_number
    from race_sessions
    inner join openf1_positions
        on race_sessions.session_key = openf1_positions.session_key
),

positions as (
    select
        coalesce(app_side.race_id, openf1_side.race_id) as race_id,
        coalesce(app_side.session_key, openf1_side.session_key) as session_key,
        coalesce(app_side.position, openf1_side.position) as position,
        app_side.car_number as app_car_number,
        openf1_side.driver_number as openf1_car_number
    from app_side
    full outer join openf1_side
        on app_side.race_id = openf1_side.race_id
        and app_side.position = openf1_side.position
),

labelled as (
    select
        race_id,
        session_key,
        position,
        app_car_number,
        openf1_car_number,
        case
            when app_car_number is null then 'openf1_only'
            when openf1_car_number is null then 'app_only'
            when app_car_number = openf1_car_number then 'same'
            else 'different'
        end as comparison,
        row_number() over (
            partition by
                race_id,
                app_car_number is not null
                and openf1_car_number is not null
                and app_car_number <> openf1_car_number
            order by position
        ) as position_rank
    from positions
),

summary as (
    select
        race_id,
        session_key,
        count(*) filter (where comparison in ('same', 'different')) as positions_compared,
        count(*) filter (where comparison = 'different') as positions_differing,
        string_agg(
            'P' || position || ' app ' || app_car_number || ' / OpenF1 ' || openf1_car_number,
            '; ' order by position
        ) filter (where comparison = 'different' and position_rank <= 3) as first_differences,
        string_agg(
            'P' || position || ' car ' || app_car_number, ', ' order by position
        ) filter (where comparison = 'app_only') as app_only_positions,
        string_agg(
            'P' || position || ' car ' || openf1_car_number, ', ' order by position
        ) filter (where comparison = 'openf1_only') as openf1_only_positions
    from labelled
    group by race_id, session_key
),

app_counts as (
    select
        race_id,
        count(*) as app_classified_count
    from app_positions
    group by race_id
),

openf1_counts as (
    select
        session_key,
        count(*) as openf1_classified_count
    from openf1_positions
    group by session_key
),

compared as (
    select
        race_sessions.race_id,
        race_sessions.session_key,
        coalesce(app_counts.app_classified_count, 0) as app_classified_count,
        coalesce(openf1_counts.openf1_classified_count, 0) as openf1_classified_count,
        coalesce(summary.positions_compared, 0) as positions_compared,
        coalesce(summary.positions_differing, 0) as positions_differing,
        summary.first_differences,
        summary.app_only_positions,
        summary.openf1_only_positions
    from race_sessions
    left join app_counts
        on race_sessions.race_id = app_counts.race_id
    left join openf1_counts
        on race_sessions.session_key = openf1_counts.session_key
    left join summary
        on race_sessions.race_id = summary.race_id
        and race_sessions.session_key = summary.session_key
),

final as (
    select
        race_id,
        session_key,
        case
            when app_classified_count = 0 or openf1_classified_count = 0 then 'no_results'
            when positions_differing > 0 or positions_compared = 0 then 'disagree'
            else 'agree'
        end as results_check,
        case
            when app_classified_count = 0 and openf1_classified_count = 0
                then 'no results on either side yet'
            when app_classified_count = 0 then 'no application results for the race yet'
            when openf1_classified_count = 0
                then 'no OpenF1 results for session ' || session_key || ' yet'
            when positions_differing > 0
                then first_differences
                || case
                    when positions_differing > 3
                        then '; ... (' || positions_differing || ' of '
                        || positions_compared || ' positions differ)'
                    else ''
                end
            when positions_compared = 0 then 'no position is classified on both sides'
            else
                positions_compared || ' positions agree'
                || coalesce('; classified by the application only: ' || app_only_positions, '')
                || coalesce('; classified by OpenF1 only: ' || openf1_only_positions, '')
        end as results_detail,
        app_classified_count,
        openf1_classified_count,
        positions_compared,
        positions_differing
    from compared
)

select * from final
