"""The whole race weekend: every session of a mapped race by kind (mart race_openf1_sessions)
and lookups by kind on the command line, in Python and in SQL; the application's results (the
demo's Ergast results) and what a run says without them. Real rows of the bundled data: Baku
2023 (race 1101, meeting 1207) had a "Sprint Shootout", Shanghai 2024 (race 1125, meeting 1233)
a "Sprint Qualifying", Bahrain 2023 (race 1098) no sprint at all."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import threading
import time

import psycopg2
import pytest
from conftest import AS_OF, database_copy, gx_root, query, racemap_command, run_pipeline

from racemap.checks.validate import run_checkpoint
from racemap.errors import RacemapError
from racemap.mapping import dbt
from racemap.mapping.lookup import NotMapped, race_session_key, session_key_for_race, session_kind
from racemap.mapping.results import prepare_results
from racemap.openf1.sync import SyncRun
from racemap.race_data import RaceDataRun, sync_and_check
from racemap.reporting.export import COLUMNS, crosswalk_rows, write_crosswalk
from racemap.settings import RacesTable


def weekend(db, race_id):
    return query(
        db,
        "select session_kind, session_key, session_name from racemap.race_openf1_sessions"
        " where race_id = %s order by starts_at",
        (race_id,),
    )


@pytest.mark.parametrize(
    ("race_id", "sessions"),
    [
        pytest.param(
            "1101",
            [
                ("practice_1", 9063, "Practice 1"),
                ("qualifying", 9064, "Qualifying"),
                ("sprint_qualifying", 9278, "Sprint Shootout"),
                ("sprint", 9069, "Sprint"),
                ("race", 9070, "Race"),
            ],
            id="2023-sprint-shootout-weekend",
        ),
        pytest.param(
            "1125",
            [
                ("practice_1", 9663, "Practice 1"),
                ("sprint_qualifying", 9668, "Sprint Qualifying"),
                ("sprint", 9672, "Sprint"),
                ("qualifying", 9664, "Qualifying"),
                ("race", 9673, "Race"),
            ],
            id="2024-sprint-weekend",
        ),
    ],
)
def test_session_kinds_of_a_sprint_weekend(mapped_demo, race_id, sessions):
    db, _result, _reports = mapped_demo
    assert weekend(db, race_id) == sessions


def test_every_mapped_weekend_has_its_sessions_and_no_testing_day(mapped_demo):
    db, _result, _reports = mapped_demo
    counts = dict(
        query(
            db,
            "select session_kind, count(*) from racemap.race_openf1_sessions group by 1",
        )
    )
    # 70 weekends of 2023-2025; 18 of them sprint weekends (6 in 2023, 6 in 2024, 6 in 2025).
    assert counts == {
        "practice_1": 70,
        "practice_2": 52,
        "practice_3": 52,
        "sprint_qualifying": 18,
        "sprint": 18,
        "qualifying": 70,
        "race": 70,
    }
    testing = query(
        db,
        "select count(*) from racemap.race_openf1_sessions where meeting_key in (1140, 1228, 1253)",
    )
    assert testing == [(0,)]


def test_lookups_by_kind_in_python(mapped_demo):
    db, _result, _reports = mapped_demo
    with db.transaction() as conn:
        assert session_key_for_race(conn, "1125") == 9673
        assert session_key_for_race(conn, "1125", kind="sprint") == 9672
        assert session_key_for_race(conn, "1101", "sprint_qualifying") == 9278
        found = race_session_key(conn, "1098", "practice_3")
        assert (found.meeting_key, found.session_key, found.kind) == (1141, 7767, "practice_3")
        with pytest.raises(NotMapped, match=r"not mapped: no sprint session in meeting 1141"):
            session_key_for_race(conn, "1098", kind="sprint")
        with pytest.raises(NotMapped, match="not mapped: no_meeting") as info:
            session_key_for_race(conn, "1169", kind="qualifying")
        assert info.value.reason == "no_meeting"
        with pytest.raises(RacemapError, match="unknown session kind 'fp1'"):
            session_key_for_race(conn, "1125", kind="fp1")


def test_lookups_by_kind_in_sql(mapped_demo):
    db, _result, _reports = mapped_demo
    assert query(
        db,
        "select racemap.session_key_for_race('1125', 'sprint'),"
        " racemap.session_key_for_race('1125', 'race'), racemap.session_key_for_race('1125'),"
        " racemap.session_key_for_race('1101', 'sprint_qualifying')",
    ) == [(9672, 9673, 9673, 9278)]
    with pytest.raises(psycopg2.Error, match="not mapped: no sprint session in meeting 1141"):
        query(db, "select racemap.session_key_for_race('1098', 'sprint')")
    with pytest.raises(psycopg2.Error, match="unknown session kind fp1"):
        query(db, "select racemap.session_key_for_race('1125', 'fp1')")


def test_a_sql_lookup_waiting_on_a_builds_swap_reads_the_new_sessions(applied_db):
    """A build replaces race_openf1_sessions as dbt's table materialization does (a new table,
    the old one renamed away, one commit). An application's lookup by kind that waited on that
    swap read the new table with the snapshot its query took before (the function was STABLE):
    no row, and 'not mapped: no sprint session in meeting 1233' for a race that has one."""
    build, app = applied_db.connect(), applied_db.connect()
    app.autocommit = True
    answer = {}

    def lookup():
        try:
            with app.cursor() as cur:
                cur.execute("select racemap.session_key_for_race('1125', 'sprint')")
                answer["key"] = cur.fetchone()[0]
        except psycopg2.Error as exc:
            answer["error"] = str(exc).splitlines()[0]

    try:
        with build.cursor() as cur:
            cur.execute(
                "create table racemap.race_openf1_sessions__dbt_tmp as"
                " select * from racemap.race_openf1_sessions;"
                " alter table racemap.race_openf1_sessions"
                " rename to race_openf1_sessions__dbt_backup;"
                " alter table racemap.race_openf1_sessions__dbt_tmp rename to race_openf1_sessions"
            )
        waiting = threading.Thread(target=lookup)
        waiting.start()
        while not query(
            applied_db,
            "select count(*) from pg_stat_activity where wait_event_type = 'Lock'"
            " and datname = current_database() and query like %s",
            ("%session_key_for_race%",),
        )[0][0]:
            assert waiting.is_alive(), answer
            time.sleep(0.05)
        build.commit()
        waiting.join(60)
    finally:
        build.close()
        app.close()
    assert answer == {"key": 9672}


def test_a_session_kind_as_a_person_types_it():
    """The race page's session_kind (a papermill -p value): 'Sprint' was an unknown kind."""
    assert session_kind("Sprint") == "sprint"
    assert session_kind(" sprint qualifying ") == "sprint_qualifying"
    assert session_kind("Practice-1") == "practice_1"
    with pytest.raises(RacemapError, match="unknown session kind 'fp1': one of practice_1, "):
        session_kind("fp1")


@pytest.mark.parametrize(
    ("args", "code", "expected"),
    [
        (
            ["--race-id", "1125", "--session", "sprint"],
            0,
            "race 1125: meeting_key 1233, session_key 9672 (sprint)",
        ),
        (
            ["--race-id", "1101", "--session", "sprint_qualifying"],
            0,
            "race 1101: meeting_key 1207, session_key 9278 (sprint_qualifying)",
        ),
        (
            ["--race-id", "1098", "--session", "sprint"],
            1,
            "racemap: not mapped: no sprint session in meeting 1141 (race 1098)",
        ),
        (
            ["--race-id", "1169", "--session", "race"],
            1,
            "racemap: not mapped: no_meeting (race 1169)",
        ),
        (["--meeting-key", "1233", "--session", "sprint"], 2, "--session goes with --race-id"),
        (["--race-id", "1125", "--session", "fp1"], 2, "invalid choice: 'fp1'"),
    ],
)
def test_lookup_command_by_kind(mapped_demo, monkeypatch, capsys, args, code, expected):
    db, _result, _reports = mapped_demo
    monkeypatch.setenv("DATABASE_URL", db.url)
    returncode, out, err = racemap_command(["lookup", *args], capsys)
    assert returncode == code
    last = (out if code == 0 else err).strip().splitlines()[-1]
    assert expected in last
    assert "Traceback" not in err


def test_demo_holds_the_ergast_results_and_drivers(demo_db):
    assert query(demo_db, "select count(*) from public.results") == [(27480,)]
    assert query(demo_db, "select count(*) from public.drivers") == [(879,)]
    # Monaco 2023: Magnussen (car 20) retired after 70 of 78 laps, not classified (\\N).
    assert query(
        demo_db,
        "select d.driver_ref, r.position, r.position_text, r.position_order from public.results r"
        " join public.drivers d on d.id = r.driver_id where r.race_id = '1104' and r.number = 20",
    ) == [("kevin_magnussen", None, "R", 19)]
    assert prepare_results(demo_db, {}, log=lambda *_: None) is None


def test_without_a_results_table_the_check_is_skipped_and_said_once(demo_db):
    lines = []
    query(demo_db, "drop table public.results")
    prepare_results(demo_db, {}, log=lines.append)
    assert len(lines) == 1
    assert lines[0].startswith("results check skipped: no table public.results")
    # a database the user pointed racemap at never gets the demo results
    assert query(demo_db, "select to_regclass('public.results') is null") == [(True,)]


def test_a_results_column_var_naming_no_column_is_one_clear_line(demo_db):
    with pytest.raises(RacemapError) as info:
        prepare_results(demo_db, {"result_number_column": "car"}, log=lambda *_: None)
    assert str(info.value) == (
        "column 'car' (result_number_column) does not exist in public.results: "
        "set --var result_number_column=<column>"
    )


# -- the results cross-check ------------------------------------------------------------------


def results_checks(db, where="status = 'mapped'"):
    return dict(
        query(
            db,
            "select results_check, count(*) from racemap.race_openf1_mapping"
            f" where {where} group by results_check",
        )
    )


def rebuild_and_validate(db, tmp_path):
    """dbt build and the mapping checkpoint, as racemap run does after the load: dbt in the
    database's own state, as a run's (a copy of the shared mapped database comes with it,
    parsed with these vars: the build's parse is partial)."""
    from racemap.runtime import database_state

    db.export_env()
    with database_state(db):
        dbt.build({"as_of": AS_OF})
    return run_checkpoint(
        db, "mapping", RacesTable.from_vars(None), tmp_path, "weekend-test", gx_root=gx_root()
    )


def test_all_70_races_of_2023_2025_agree_with_openf1(mapped_demo):
    db, result, _reports = mapped_demo
    assert results_checks(db) == {"agree": 70}
    assert result.summary["results_check"] == {"agree": 70}
    assert results_checks(db, "status = 'unmapped'") == {None: 1090}
    details = dict(
        query(
            db,
            "select race_id, results_detail from racemap.race_openf1_mapping"
            " where race_id in ('1104', '1116', '1134')",
        )
    )
    assert details == {
        # OpenF1 classifies Magnussen P19 after 70 of 78 laps; Ergast does not.
        "1104": "18 positions agree; classified by OpenF1 only: P19 car 20",
        # Hamilton and Leclerc disqualified: null position on both sides (no dsq flag in OpenF1).
        "1116": "15 positions agree",
        # Russell (63) disqualified: the same.
        "1134": "18 positions agree",
    }


def test_swapped_results_disagree_and_are_named_in_the_run_output(mapped_template, tmp_path):
    with database_copy(mapped_template[0]) as db:
        # The application holds the 2024 Belgian GP's results under the Dutch GP and back.
        query(
            db,
            "update public.results set race_id = case race_id when '1134' then '1135'"
            " else '1134' end where race_id in ('1134', '1135')",
        )
        result = run_pipeline(db, tmp_path)
        assert result.exit_code != 0
        assert results_checks(db) == {"agree": 68, "disagree": 2}
        assert result.summary["results_check"] == {"agree": 68, "disagree": 2}
        # The run's failed expectations (summary.json and the line the run prints) name them.
        failed = result.summary["validations"]["failed_expectations"]
        named = [f for f in failed if "results_check" in f]
        assert named == [
            "race_openf1_mapping: expect_column_values_to_be_in_set(race_id) 'no race's results"
            " disagree with OpenF1's (results_check)' [2 unexpected: 1134, 1135]"
        ]
        detail = query(
            db,
            "select results_detail from racemap.race_openf1_mapping where race_id = '1134'",
        )[0][0]
        assert detail.startswith("P1 app 4 / OpenF1 44; P2 app 1 / OpenF1 81; ")


def test_a_car_number_on_two_result_rows_links_no_driver_and_the_build_goes_on(
    mapped_template, tmp_path
):
    """The application's results are user input: a car number on two rows of one race, or a row
    without a number, failed the whole build (race_driver_links' uniqueness and not-null tests),
    so no race was mapped."""
    with database_copy(mapped_template[0]) as db:
        # Singapore 2024 (race 1138): Piastri's row says car 4, Norris's; Russell's has none.
        query(db, "update public.results set number = 4 where race_id = '1138' and number = 81")
        query(db, "update public.results set number = null where race_id = '1138' and number = 63")
        # A text column of car numbers with one that is none (China 2024, race 1125: car 1 'x'),
        # and positions as numeric: the cast failed the build.
        query(db, "alter table public.results alter column number type text using number::text")
        query(db, "alter table public.results alter column position type numeric(4, 1)")
        query(db, "update public.results set number = 'x' where race_id = '1125' and number = '1'")
        query(
            db, "update public.results set number = ' 44 ' where race_id = '1125' and number = '44'"
        )
        rebuild_and_validate(db, tmp_path)  # dbt.build raises when the build fails
        assert query(
            db,
            "select car_number, position from racemap_staging.stg_app__results"
            " where race_id = '1125' and (car_number is null or car_number in (44, 4))"
            " order by car_number nulls first",
        ) == [(None, 1), (4, 2), (44, 9)]  # Verstappen won, Norris second, Hamilton ninth
        links = query(
            db,
            "select car_number, driver_id, app_result_rows, link_detail, is_linked"
            " from racemap.race_driver_links where race_id = '1138' and car_number in (4, 63, 81)"
            " order by car_number",
        )
        ids = query(
            db, "select driver_id from public.results where race_id = '1138' and number = '4'"
        )
        named = ", ".join(sorted(str(i) for (i,) in ids))
        assert links == [
            (
                4,
                None,
                2,
                f"car 4 is on 2 rows of the application's results (drivers {named}): no"
                " driver linked; fix the results",
                False,
            ),
            (
                63,
                None,
                0,
                None,
                False,
            ),  # OpenF1's car 63 alone: the application's row has no number
            (81, None, 0, None, False),
        ]
        # The results check names the race (P3 is car 81 in OpenF1, car 4 in the application).
        ((check, detail),) = query(
            db,
            "select results_check, results_detail from racemap.race_openf1_mapping"
            " where race_id = '1138'",
        )
        assert check == "disagree" and "P3 app 4 / OpenF1 81" in detail
        # The race's synced data: the three cars have no driver id, and the sync names them.
        result = sync_and_check(
            RaceDataRun(
                SyncRun(db, race_ids=["1138"], offline=True, log=lambda _line: None),
                tmp_path / "sync",
                {"as_of": AS_OF},  # the build's vars: its parse of the project is kept
                pages=False,
            )
        )
        assert (result.verdict, result.failures) == ("attention", [])
        unlinked = sorted(line for line in result.attention if "driver_not_linked" in line)
        assert unlinked == [
            "race 1138 (race): driver (no id) (car 4 NOR): driver_not_linked: car 4 is on 2 rows"
            f" of the application's results (drivers {named}): no driver linked; fix the results",
            "race 1138 (race): driver (no id) (car 63 RUS): driver_not_linked: car 63 is on no"
            " row of the application's results of the race: its race data has no driver id",
            "race 1138 (race): driver (no id) (car 81 PIA): driver_not_linked: car 81 is on no"
            " row of the application's results of the race: its race data has no driver id",
        ]


def test_results_not_published_yet_are_no_results_and_no_failure(mapped_template, tmp_path):
    with database_copy(mapped_template[0]) as db:
        # Abu Dhabi 2025 (race 1168) before OpenF1 published session 9839's results.
        query(db, "delete from raw.openf1_session_results where session_key = 9839")
        outcome = rebuild_and_validate(db, tmp_path)
        assert outcome.success, outcome.failed
        assert results_checks(db) == {"agree": 69, "no_results": 1}
        assert query(
            db,
            "select results_check, results_detail from racemap.race_openf1_mapping"
            " where race_id = '1168'",
        ) == [("no_results", "no OpenF1 results for session 9839 yet")]

        # Without a results table at all, every mapped race is no_results: the check is skipped.
        query(db, "drop table public.results")
        outcome = rebuild_and_validate(db, tmp_path)
        assert outcome.success, outcome.failed
        assert results_checks(db) == {"no_results": 70}


def test_qualifying_rows_with_array_durations_load(mapped_demo):
    db, _result, _reports = mapped_demo
    # Baku 2023 qualifying (9064): duration and gap_to_leader are [Q1, Q2, Q3] arrays.
    rows = query(
        db,
        "select jsonb_typeof(duration), jsonb_array_length(duration), duration_seconds"
        " from racemap_staging.stg_openf1__session_results"
        " where session_key = 9064 and driver_number = 16",
    )
    assert rows == [("array", 3, None)]
    kinds = dict(
        query(
            db,
            "select jsonb_typeof(gap_to_leader), count(*)"
            " from racemap_staging.stg_openf1__session_results group by 1",
        )
    )
    assert kinds["array"] == 1737  # every qualifying-type row (SOURCES.md)
    assert kinds["string"] == 297  # "+1 LAP", "+2 LAPS"


def test_driver_links_join_the_application_driver_to_the_openf1_car(mapped_demo):
    db, _result, _reports = mapped_demo
    # Abu Dhabi 2025: Verstappen (Ergast driverId 830) won in car 1.
    assert query(
        db,
        "select driver_id, driver_number, app_position, openf1_position, is_same_position"
        " from racemap.race_driver_links where race_id = '1168' and car_number = 1",
    ) == [("830", 1, 1, 1, True)]
    one_sided = query(
        db,
        "select race_id, car_number, driver_id, driver_number from racemap.race_driver_links"
        " where not is_linked",
    )
    # Stroll withdrew from the 2023 Singapore GP: Ergast lists him (W), OpenF1 does not.
    assert one_sided == [("1113", 18, "840", None)]
    assert query(db, "select count(*) from racemap.race_driver_links") == [(1398,)]


# -- the crosswalk export ---------------------------------------------------------------------


def read_back(path, fmt):
    """The exported file as a list of dicts with the database's Python types."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    if fmt == "json":
        return json.loads(path.read_text(encoding="utf-8"))
    kinds = {c.name: c.kind for c in COLUMNS}
    convert = {"int": int, "float": float, "text": str}
    with path.open(newline="", encoding="utf-8") as handle:
        return [
            {k: (None if v == "" else convert[kinds[k]](v)) for k, v in row.items()}
            for row in csv.DictReader(handle)
        ]


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_the_crosswalk_round_trips(mapped_demo, monkeypatch, capsys, tmp_path, fmt):
    db, _result, _reports = mapped_demo
    output = tmp_path / "out" / f"crosswalk.{fmt}"
    output.parent.mkdir()
    monkeypatch.setenv("DATABASE_URL", db.url)
    code, out, err = racemap_command(["export", "--format", fmt, "--output", str(output)], capsys)
    assert code == 0, err
    assert out.strip() == f"exported 1160 races to {output} ({fmt})"
    with db.transaction() as conn:
        expected = crosswalk_rows(conn)
    back = read_back(output, fmt)
    assert back == expected
    assert list(back[0]) == [c.name for c in COLUMNS]
    shanghai = next(r for r in back if r["race_id"] == "1125")
    assert shanghai == {
        "race_id": "1125",
        "season": 2024,
        "round": 5,
        "circuit_id": "shanghai",
        "race_name": "Chinese Grand Prix",
        "status": "mapped",
        "meeting_key": 1233,
        "session_key": 9673,
        "practice_1_session_key": 9663,
        "practice_2_session_key": None,
        "practice_3_session_key": None,
        "sprint_qualifying_session_key": 9668,
        "sprint_session_key": 9672,
        "qualifying_session_key": 9664,
        "method": "circuit_and_race_time",
        "delta_hours": 0.0,
        "results_check": "agree",
        "reason": None,
    }
    first = back[0]
    assert (first["race_id"], first["status"], first["reason"]) == (
        "833",
        "unmapped",
        "before_openf1_coverage",
    )
    assert sum(r["status"] == "mapped" for r in back) == 70


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_a_name_with_line_breaks_and_quotes_stays_in_its_row(tmp_path, fmt):
    """The application's names are user input: a bare CR, a line break, quotes and commas."""
    row = {c.name: None for c in COLUMNS}
    row.update(race_id="ctl-1", season=2024, race_name="Ctl\rname", status="mapped")
    rows = [row, {**row, "race_id": "ctl-2", "race_name": 'Ctl\r\nname\n, "GP"; =1+1'}]
    write_crosswalk(rows, fmt, tmp_path / f"out.{fmt}")
    assert read_back(tmp_path / f"out.{fmt}", fmt) == rows


@pytest.mark.parametrize(
    ("args", "code", "expected"),
    [
        (["--format", "xml", "--output", "{tmp}/x.xml"], 2, "invalid choice: 'xml'"),
        (
            ["--format", "csv", "--output", "{tmp}"],
            1,
            "racemap: cannot write {tmp}: Is a directory",
        ),
        (
            ["--format", "json", "--output", "/proc/racemap/x.json"],
            1,
            "racemap: cannot write /proc/racemap/x.json: No such file or directory",
        ),
        (
            ["--format", "csv", "--output", "{tmp}/no/such/dir/x.csv"],
            1,
            "racemap: cannot write {tmp}/no/such/dir/x.csv: No such file or directory",
        ),
        (
            ["--format", "csv", "--output", "{tmp}/x.csv", "--var", "race_round_column=rnd"],
            1,
            "racemap: column 'rnd' (race_round_column) does not exist in public.races:",
        ),
    ],
)
def test_export_errors_are_one_clear_line(
    mapped_demo, monkeypatch, capsys, tmp_path, args, code, expected
):
    db, _result, _reports = mapped_demo
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    monkeypatch.setenv("DATABASE_URL", db.url)
    returncode, _out, err = racemap_command(["export", *args], capsys)
    assert returncode == code
    lines = err.strip().splitlines()
    assert expected.replace("{tmp}", str(tmp_path)) in lines[-1]
    assert "Traceback" not in err
    if code == 1:
        assert len(lines) == 1
        assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_export_without_a_round_column_leaves_round_empty(mapped_template, tmp_path):
    with database_copy(mapped_template[0]) as db, db.transaction() as conn:
        with conn.cursor() as cur:
            cur.execute("alter table public.races rename column round to race_round")
        rows = crosswalk_rows(conn)
        assert {r["round"] for r in rows} == {None}
        assert crosswalk_rows(conn, {"race_round_column": "race_round"})[0]["round"] == 1
        path = write_crosswalk(rows, "parquet", tmp_path / "c.parquet")
        assert read_back(path, "parquet") == rows


def test_report_data_verified_by_results(mapped_template):
    from racemap.reporting.report_data import results_to_review, verified_by_results

    with database_copy(mapped_template[0]) as db:
        with db.transaction() as conn:
            by_season = verified_by_results(conn)
            assert by_season.to_dict("records") == [
                {"season": 2023, "mapped": 22, "agree": 22, "disagree": 0, "no_results": 0},
                {"season": 2024, "mapped": 24, "agree": 24, "disagree": 0, "no_results": 0},
                {"season": 2025, "mapped": 24, "agree": 24, "disagree": 0, "no_results": 0},
            ]
            assert results_to_review(conn).empty
            # a disagreement and a race not checked yet, as the report would list them
            with conn.cursor() as cur:
                cur.execute(
                    "update racemap.race_openf1_mapping set results_check = 'no_results'"
                    " where race_id = '1168';"
                    " update racemap.race_openf1_mapping set results_check = 'disagree',"
                    " results_detail = 'P1 app 4 / OpenF1 44' where race_id = '1134'"
                )
            review = results_to_review(conn)
        assert review[["results_check", "race_id"]].values.tolist() == [
            ["disagree", "1134"],
            ["no_results", "1168"],
        ]


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_the_crosswalk_to_standard_output(mapped_demo, tmp_path, fmt):
    db, _result, _reports = mapped_demo
    done = subprocess.run(
        [sys.executable, "-m", "racemap.cli", "export", "--format", fmt, "--output", "-"],
        capture_output=True,
        env={**os.environ, "DATABASE_URL": db.url},
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.decode().strip() == f"exported 1160 races to standard output ({fmt})"
    assert list(tmp_path.iterdir()) == []  # no file named -
    (tmp_path / f"out.{fmt}").write_bytes(done.stdout)
    with db.transaction() as conn:
        assert read_back(tmp_path / f"out.{fmt}", fmt) == crosswalk_rows(conn)


def test_the_crosswalk_to_a_reader_that_stops_early_is_quiet(mapped_demo, tmp_path):
    """``racemap export --output - | head -1``: the reader goes away; no error, exit 141 (as a
    command killed by SIGPIPE)."""
    db, _result, _reports = mapped_demo
    command = [sys.executable, "-m", "racemap.cli", "export", "--format", "csv", "--output", "-"]
    export = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "DATABASE_URL": db.url},
        cwd=tmp_path,
    )
    assert export.stdout.readline().startswith(b"race_id,season,round,")
    export.stdout.close()  # as head does after its line
    err = export.stderr.read().decode()
    assert export.wait(timeout=120) == 141, err
    assert err == ""
