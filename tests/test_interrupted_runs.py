"""Killing `racemap run` at any stage and running it again gives the same final table."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import time
from pathlib import Path

from conftest import query, run_command

EXPECTED = Path(__file__).parent / "expected" / "mapping_2023_2025.csv"


def _kill_at(db, reports: Path, stage: str) -> None:
    """Start a run and SIGKILL it (with its notebook kernel) as soon as ``stage`` starts."""
    args, env = run_command(db, reports)
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        for line in proc.stdout:
            if line.strip() == f"-> {stage}":
                os.killpg(proc.pid, signal.SIGKILL)
                break
        else:
            raise AssertionError(f"the run ended before stage {stage}")
    finally:
        proc.wait(timeout=300)
    assert proc.returncode == -signal.SIGKILL


def _kill_inside_the_apply(db, reports: Path) -> None:
    """Hold the run inside the apply's transaction and SIGKILL it there.

    The test locks racemap.mapping_history first: the run's apply locks its rows, records the
    run in racemap.mapping_runs, then waits on that lock to write the history. Killed there, its
    transaction (run record included) must vanish whole.
    """
    holder = db.connect()
    try:
        with holder.cursor() as cur:
            cur.execute("lock table racemap.mapping_history in share mode")  # blocks writes only
        args, env = run_command(db, reports)
        proc = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                waiting = query(
                    db,
                    "select count(*) from pg_stat_activity where wait_event_type = 'Lock'"
                    " and datname = current_database()"
                    " and query ilike '%%insert into racemap.mapping_history%%'",
                )
                if waiting[0][0]:
                    break
                assert proc.poll() is None, "the run ended before its apply wrote history"
                time.sleep(0.2)
            else:
                raise AssertionError("the run never reached the apply's history insert")
            os.killpg(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(timeout=300)
    finally:
        holder.rollback()
        holder.close()
    assert proc.returncode == -signal.SIGKILL


def test_killed_runs_then_a_full_run_give_the_uninterrupted_result(demo_db, tmp_path):
    for stage in ("load", "dbt_build"):
        _kill_at(demo_db, tmp_path / stage, stage)
    _kill_inside_the_apply(demo_db, tmp_path / "apply")
    # The killed apply left nothing: no run record, no history, no keys.
    assert query(demo_db, "select count(*) from racemap.mapping_runs") == [(0,)]
    assert query(demo_db, "select count(*) from racemap.mapping_history") == [(0,)]
    assert query(
        demo_db, "select count(*) from public.races where openf1_meeting_key is not null"
    ) == [(0,)]
    args, env = run_command(demo_db, tmp_path / "final")
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    # The GX worker and the report's kernel end with the run, cleanly: no leaked-semaphore or
    # zmq warning at exit.
    for noise in ("resource_tracker", "zmq context"):
        assert noise not in done.stderr, done.stderr[-2000:]

    with EXPECTED.open() as handle:
        expected = sorted(
            (r["race_id"], int(r["meeting_key"]), int(r["session_key"]))
            for r in csv.DictReader(handle)
            if r["status"] == "mapped"
        )
    mapped = query(
        demo_db,
        "select id, openf1_meeting_key, openf1_session_key from public.races"
        " where openf1_meeting_key is not null order by id",
    )
    assert mapped == expected
    # nothing was loaded twice, and a killed apply left no half-written history
    assert query(demo_db, "select count(*) from raw.openf1_meetings") == [(73,)]
    assert query(demo_db, "select count(*) from racemap.mapping_history") == [(70,)]
