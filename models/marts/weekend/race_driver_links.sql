{#-
    The driver link, for analysts: per mapped race, the application's result rows joined to
    OpenF1's session_result rows of the race session by car number (the way FastF1 links
    drivers per event), so the application's driver id meets OpenF1's driver_number. A car on
    one side only is kept with the other side null: Ergast lists Stroll (car 18) as withdrawn
    (positionText W) at the 2023 Singapore GP (race 1113), OpenF1's session 9165 has no row.
-#}
with

mapping as (
    select * from {{ ref('race_openf1_mapping') }}
),

app_results as (
    select * from {{ ref('stg_app__results') }}
),

session_results as (
    select * from {{ ref('stg_openf1__session_results') }}
),

mapped_races as (
    select
        race_id,
        meeting_key,
        session_key
    from mapping
    where status = 'mapped'
),

-- One row per car: a car number the application's results give to more than one row of a race
-- (bad input: two drivers, or a row twice) links no driver, and link_detail names them; a row
-- without a car number cannot be linked and is left out. Either made the build fail.
app_cars as (
    select
        mapped_races.race_id,
        mapped_races.meeting_key,
        mapped_races.session_key,
        app_results.car_number,
        case when count(*) = 1 then min(app_results.driver_id) end as driver_id,
        case when count(*) = 1 then min(app_results.position) end as position,
        count(*) as app_result_rows,
        case
            when count(*) > 1
                then 'car ' || app_results.car_number || ' is on ' || count(*)
                || ' rows of the application''s results (drivers '
                || coalesce(
                    string_agg(app_results.driver_id, ', ' order by app_results.driver_id), '?'
                )
                || '): no driver linked; fix the results'
        end as link_detail
    from mapped_races
    inner join app_results
        on mapped_races.race_id = app_results.race_id
    where app_results.car_number is not null
    group by
        mapped_races.race_id,
        mapped_races.meeting_key,
        mapped_races.session_key,
        app_results.car_number
),

openf1_cars as (
    select
        mapped_races.race_id,
        mapped_races.meeting_key,
        mapped_races.session_key,
        session_results.driver_number,
        session_results.position,
        session_results.is_dnf,
        session_results.is_dns,
        session_results.is_dsq
    from mapped_races
    inner join session_results
        on mapped_races.session_key = session_results.session_key
),

final as (
    select
        coalesce(app_cars.race_id, openf1_cars.race_id) as race_id,
        coalesce(app_cars.meeting_key, openf1_cars.meeting_key) as meeting_key,
        coalesce(app_cars.session_key, openf1_cars.session_key) as session_key,
        coalesce(app_cars.car_number, openf1_cars.driver_number) as car_number,
        app_cars.driver_id,
        openf1_cars.driver_number,
        app_cars.position as app_position,
        openf1_cars.position as openf1_position,
        coalesce(app_cars.app_result_rows, 0) as app_result_rows,
        app_cars.link_detail,
        (
            app_cars.app_result_rows = 1 and openf1_cars.race_id is not null
        ) is true as is_linked,
        (
            app_cars.app_result_rows = 1
            and openf1_cars.race_id is not null
            and app_cars.position is not distinct from openf1_cars.position
        ) is true as is_same_position,
        openf1_cars.is_dnf as is_openf1_dnf,
        openf1_cars.is_dns as is_openf1_dns,
        openf1_cars.is_dsq as is_openf1_dsq
    from app_cars
    full outer join openf1_cars
        on app_cars.race_id = openf1_cars.race_id
        and app_cars.car_number = openf1_cars.driver_number
)

select * from final
