"""A plain `dbt build --profiles-dir .` (a user's CI, an analytics engineer) on a database that
racemap also runs on: it takes the PG* variables only, and no lock of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import lock_held, query

PROJECT_DIR = Path(__file__).resolve().parents[1]
DBT = Path(sys.executable).parent / "dbt"


def _plain_dbt(db, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "RACEMAP_"))}
    env.update({k: v for k, v in db.env_changes().items() if v is not None})
    env.update(
        DBT_TARGET_PATH=str(tmp_path / "target"),
        DBT_LOG_PATH=str(tmp_path / "logs"),
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
    )
    return subprocess.run(
        [str(DBT), *args, "--profiles-dir", ".", "--no-use-colors"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )


def test_a_plain_dbt_build_while_racemap_holds_the_database_stops_before_it_drops_anything(
    applied_db, tmp_path
):
    """dbt takes no racemap lock: a CI's `dbt build` during a `racemap run` dropped and rebuilt
    the marts under it, and the run failed at `changes` with 'relation
    "racemap.races_needing_attention" does not exist: run racemap run'. The build now stops in
    its on-run-start hook, before any node, in one line naming the racemap that holds the
    database."""
    mapped = query(applied_db, "select count(*) from racemap.race_openf1_mapping")
    with lock_held(applied_db, "sync"):
        built = _plain_dbt(applied_db, tmp_path, "build", "--select", "race_openf1_mapping")
        assert built.returncode != 0, built.stdout
        lines = [
            line
            for line in built.stdout.splitlines()
            if "racemap sync 20261125T120000Z-abcdef" in line
        ]
        assert lines, built.stdout
        assert "run dbt again when it has finished" in lines[0], lines[0]
        assert query(applied_db, "select count(*) from racemap.race_openf1_mapping") == mapped
        # Reading is harmless: ls, compile and test never take the guard.
        assert _plain_dbt(applied_db, tmp_path, "ls", "--select", "marts").returncode == 0
    # Once the racemap has finished, the same build runs.
    again = _plain_dbt(applied_db, tmp_path, "run", "--select", "race_openf1_mapping")
    assert again.returncode == 0, again.stdout[-3000:]


def test_a_partial_build_after_a_run_leaves_out_the_tests_of_what_it_does_not_build(
    applied_db, tmp_path
):
    """After a `racemap run` (no sync: the race data models were never built) `dbt build
    --select race_openf1_mapping` (or `+race_openf1_mapping`, `state:modified+`) failed: dbt's
    eager indirect selection took the relationships test of int_race_data_drivers.race_id to
    the mapping, and 'relation "racemap_intermediate.int_race_data_drivers" does not exist'.
    The project selects tests `buildable`: a test runs when each model it reads is built or
    an ancestor of one that is."""
    absent = "select to_regclass('racemap_intermediate.int_race_data_drivers') is null"
    assert query(applied_db, absent) == [(True,)]
    built = _plain_dbt(applied_db, tmp_path, "build", "--select", "race_openf1_mapping")
    assert built.returncode == 0, built.stdout[-3000:]
    assert "relationships_int_race_data_drivers" not in built.stdout


def test_the_unit_tests_pass_under_a_races_tables_own_column_vars(applied_db, tmp_path):
    """The README's `--var race_id_column=gp_id ...` given to a plain `dbt build --vars`: the
    unit tests of stg_app__races, whose fixture rows carry Ergast's columns (id, date, ...),
    failed with 'column "gp_id" does not exist', and the build skipped some 200 nodes after
    them. They pin the column vars to the fixture's."""
    query(
        applied_db,
        "create schema app; create table app.grand_prix as select id as gp_id,"
        " circuit_id as track, name as title, date as race_day, time as start_utc,"
        " round as rnd from public.races",
    )
    variables = (
        "{races_schema: app, races_table: grand_prix, race_id_column: gp_id,"
        " race_circuit_column: track, race_date_column: race_day,"
        " race_time_column: start_utc, race_name_column: title, race_round_column: rnd}"
    )
    unit_tests = "stg_app__races,test_type:unit"
    tested = _plain_dbt(applied_db, tmp_path, "test", "--select", unit_tests, "--vars", variables)
    assert tested.returncode == 0, tested.stdout[-3000:]
    assert tested.stdout.count(" PASS stg_app__races::") == 3, tested.stdout[-1000:]


def test_the_unit_tests_pass_under_other_results_columns_and_tolerance(applied_db, tmp_path):
    """`--vars` naming the results table's own columns (result_number_column=car, ...) failed
    stg_app__results' unit test, whose fixture has Ergast's; `match_tolerance_hours: 6`
    failed the matching rule's, whose Las Vegas 2024 session 24 h after Ergast's date is a
    candidate only under the default 36. Each pins the vars its fixture and expectation assume
    (test_tolerance_is_a_var pins its own 12)."""
    query(
        applied_db,
        "create table public.res as select race_id as rid, number as car, position as pos,"
        " driver_id as drv from public.results",
    )
    variables = (
        "{results_table: res, result_race_id_column: rid, result_number_column: car,"
        " result_position_column: pos, result_driver_id_column: drv, match_tolerance_hours: 6}"
    )
    selected = [
        "stg_app__results,test_type:unit",
        "int_races_joined_to_race_sessions,test_type:unit",
    ]
    tested = _plain_dbt(applied_db, tmp_path, "test", "--select", *selected, "--vars", variables)
    assert tested.returncode == 0, tested.stdout[-3000:]
    assert tested.stdout.count(" PASS ") >= 3, tested.stdout[-1000:]


def test_a_run_that_lost_a_relation_to_another_build_records_the_line_it_printed(fresh_db):
    """A `racemap run` started while a plain `dbt build` replaced the marts (the guard stops
    only a build that starts second) stopped at `changes` printing 'the database is not as
    racemap's last build left it (relation "racemap.races_needing_attention" does not exist):
    run racemap run', but recorded, for `racemap status` and summary.json, 'unexpected
    UndefinedTable: ... LINE 15: left join racemap.races_needing_attention ... ^'."""
    import psycopg2

    from racemap.pipeline import failure_message

    with fresh_db.transaction() as conn, conn.cursor() as cur:
        try:
            cur.execute("select race_id from racemap_gone.races_needing_attention")
        except psycopg2.Error as exc:
            error = exc
    message = failure_message(error, "changes")
    assert message == (
        "the database is not as racemap's last build left it (relation"
        ' "racemap_gone.races_needing_attention" does not exist): run racemap run'
    ), message
