"""The whole race weekend: every session of a mapped race by kind (mart race_openf1_sessions)
and lookups by kind on the command line, in Python and in SQL; the application's results (the
demo's Ergast results) and what a run says without them. Real rows of the bundled data: Baku
2023 (race 1101, meeting 1207) had a "Sprint Shootout", Shanghai 2024 (race 1125, meeting 1233)
a "Sprint Qualifying", Bahrain 2023 (race 1098) no sprint at all."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg2
import pytest
from conftest import query

from racemap.errors import RacemapError
from racemap.lookup import NotMapped, race_session_key, session_key_for_race
from racemap.results import prepare_results


def weekend(db, race_id):
    return query(
        db,
        "select session_kind, session_key, session_name from racemap.race_openf1_sessions"
        " where race_id = %s order by starts_at",
        (race_id,),
    )


def test_session_kinds_of_a_2023_sprint_shootout_weekend(mapped_demo):
    db, _result, _reports = mapped_demo
    assert weekend(db, "1101") == [
        ("practice_1", 9063, "Practice 1"),
        ("qualifying", 9064, "Qualifying"),
        ("sprint_qualifying", 9278, "Sprint Shootout"),
        ("sprint", 9069, "Sprint"),
        ("race", 9070, "Race"),
    ]


def test_session_kinds_of_a_2024_sprint_weekend(mapped_demo):
    db, _result, _reports = mapped_demo
    assert weekend(db, "1125") == [
        ("practice_1", 9663, "Practice 1"),
        ("sprint_qualifying", 9668, "Sprint Qualifying"),
        ("sprint", 9672, "Sprint"),
        ("qualifying", 9664, "Qualifying"),
        ("race", 9673, "Race"),
    ]


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
def test_lookup_command_by_kind(mapped_demo, args, code, expected):
    db, _result, _reports = mapped_demo
    done = subprocess.run(
        [sys.executable, "-m", "racemap.cli", "lookup", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "DATABASE_URL": db.url},
        timeout=120,
    )
    assert done.returncode == code
    last = (done.stdout if code == 0 else done.stderr).strip().splitlines()[-1]
    assert expected in last
    assert "Traceback" not in done.stderr


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
    note = prepare_results(demo_db, {}, log=lines.append)
    assert lines == [note]
    assert note.startswith("results check skipped: no table public.results")
    # a database the user pointed racemap at never gets the demo results
    assert query(demo_db, "select to_regclass('public.results') is null") == [(True,)]


def test_a_results_column_var_naming_no_column_is_one_clear_line(demo_db):
    with pytest.raises(RacemapError) as info:
        prepare_results(demo_db, {"result_number_column": "car"}, log=lambda *_: None)
    assert str(info.value) == (
        "column 'car' (result_number_column) does not exist in public.results: "
        "set --var result_number_column=<column>"
    )
