"""Killing `racemap run` at any stage and running it again gives the same final table; an
interrupt (Ctrl-C, SIGTERM) is one line naming the stage, exit 130 / 143, recorded failed."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import lock_held, offline_args, query, run_command

from racemap.cli import main as cli_main
from racemap.runtime import LOCK_KEYS, state_dir

EXPECTED = Path(__file__).parent / "expected" / "mapping_2023_2025.csv"


@pytest.fixture(autouse=True)
def children_tmpdir(server_dir, monkeypatch):
    """The child runs' temporary files (a notebook kernel's directory and sockets) go to a
    directory of the test's own, removed after it: a SIGKILLed run cannot remove its own, and
    each left one in /tmp."""
    monkeypatch.setenv("TMPDIR", str(server_dir))


def _kill_at(db, reports: Path, stage: str) -> None:
    """Start a run and SIGKILL it (with its notebook kernel) as soon as ``stage`` starts."""
    code, _err = _interrupt_at(db, reports, stage, signal.SIGKILL, whole_group=True)
    assert code == -signal.SIGKILL


def _start(db, reports: Path, command: str = "run", *extra: str) -> subprocess.Popen:
    """``racemap run`` (or ``command``: ``sync``) offline in a session of its own (a signal can
    reach its whole process group, as a terminal's does), its output and standard error piped."""
    args, env = run_command(db, reports, *extra)
    args[args.index("run")] = command
    return subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )


@contextmanager
def _held(db, reports: Path, lock: str, waiting: str, stage: str, *command: str):
    """A run (or ``command`` with its options) started and held where it waits on a lock the
    test holds (``lock``, taken first); the block gets its process (its standard output and
    error piped) once a statement of the run matching ``waiting`` waits on it, and the hold goes
    at the block's end."""
    holder = db.connect()
    try:
        with holder.cursor() as cur:
            cur.execute(lock)
        proc = _start(db, reports, *(command or ["run"]))
        try:
            deadline = time.monotonic() + 300
            while not query(
                db,
                "select count(*) from pg_stat_activity where wait_event_type = 'Lock'"
                " and datname = current_database() and query ilike %s",
                (waiting,),
            )[0][0]:
                assert proc.poll() is None, f"the run ended before it waited in {stage}"
                assert time.monotonic() < deadline, f"the run never waited in {stage}"
                time.sleep(0.2)
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=300)
            raise
        yield proc
    finally:
        holder.rollback()  # the run's statement returns; a signal sent takes effect there
        holder.close()


def _held_in_the_apply(db, reports: Path):
    """A run held inside the apply's transaction. The test locks racemap.mapping_history first:
    the run's apply locks its rows, records the run in racemap.mapping_runs, then waits on that
    lock to write the history."""
    return _held(
        db,
        reports,
        "lock table racemap.mapping_history in share mode",  # blocks writes only
        "%insert into racemap.mapping_history%",
        "apply",
    )


def _held_in_the_build(db, reports: Path):
    """A run held while dbt builds (db: a mapped copy, whose models exist): the test locks an
    intermediate model's table, which only the build touches, and dbt waits to replace it."""
    return _held(
        db,
        reports,
        "lock table racemap_intermediate.int_meetings_summarised in access exclusive mode",
        "%int_meetings_summarised%",
        "dbt_build",
    )


def _kill_inside_the_apply(db, reports: Path) -> None:
    """SIGKILL a run inside the apply's transaction: its transaction (run record included) must
    vanish whole."""
    with _held_in_the_apply(db, reports) as proc:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=300)
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


def _last_run(db) -> tuple:
    return query(db, "select verdict, stopped_at, error from racemap.runs order by started_at")[-1]


def _assert_one_line(stderr: str, stage: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    # one line, from racemap: no traceback of the GX worker, a kernel or dbt
    assert lines == [f"racemap: interrupted during {stage}"], stderr[-3000:]


def _interrupt_at(db, reports: Path, stage: str, signum: int, whole_group: bool):
    """Start a run and send ``signum`` as soon as ``stage`` starts: to the whole process group
    (as a terminal's Ctrl-C does, or a SIGKILL with its kernel) or to racemap alone (as a
    scheduler's SIGTERM). (exit code, standard error); standard output after the signal holds
    no traceback (of dbt's, a kernel's or racemap's)."""
    proc = _start(db, reports)
    try:
        for line in proc.stdout:
            if line.strip() == f"-> {stage}":
                (os.killpg if whole_group else os.kill)(proc.pid, signum)
                break
        else:
            raise AssertionError(f"the run ended before stage {stage}: {proc.stderr.read()}")
    finally:
        out, err = proc.communicate(timeout=300)
    if signum != signal.SIGKILL:
        for noise in ("Traceback", "Encountered an error"):
            assert noise not in out, out[-3000:]
    return proc.returncode, err


def test_ctrl_c_while_dbt_builds_is_one_line_and_nothing_of_dbts(applied_db, tmp_path):
    # Ctrl-C in a terminal (SIGINT to the process group) while dbt runs a model's statement.
    with _held_in_the_build(applied_db, tmp_path / "r") as proc:
        os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130
    _assert_one_line(err, "dbt_build")
    # dbt's own "Encountered an error" and its traceback of the interrupt, and its CANCEL
    # lines, do not reach the terminal either.
    assert out.splitlines()[-1] == "-> dbt_build", out[-3000:]
    assert _last_run(applied_db) == ("failed", "dbt_build", "interrupted during dbt_build")
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert (summary["verdict"], summary["stopped_at"]) == ("failed", "dbt_build")
    # The cancelled statement left the model as it was.
    assert query(applied_db, "select count(*) > 0 from racemap.mapping_updates") == [(True,)]


def _sync_held_in_its_build(db, reports: Path):
    """A sync of one session, held where its build replaces the run's driver links
    (racemap.race_driver_links) on a lock the test holds."""
    return _held(
        db,
        reports,
        "lock table racemap.race_driver_links in access exclusive mode",
        "%alter table%race_driver_links%",
        "the sync's dbt_build",
        *("sync", "--race-id", "1125", "--sessions", "sprint"),  # one session to load
    )


def test_ctrl_c_during_a_sync_names_its_stage(applied_db, tmp_path):
    """A sync's build replaces the driver link of the run (racemap.race_driver_links): held
    there on a lock the test holds, Ctrl-C stops it with one line naming the stage."""
    with _sync_held_in_its_build(applied_db, tmp_path / "r") as proc:
        os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130
    _assert_one_line(err, "dbt_build")
    assert "-> dbt build --select tag:race_data" in out
    assert "Traceback" not in out, out[-3000:]
    # The published report set is the run's: the interrupted sync published nothing.
    assert not (tmp_path / "r" / "race_pages.html").exists()
    # Recorded failed at its stage, as an interrupted run is (racemap.sync_runs).
    assert query(applied_db, "select verdict, stopped_at, error from racemap.sync_runs") == [
        ("failed", "dbt_build", "interrupted during dbt_build")
    ]
    # racemap status fails until a sync finishes (it said ok: the run's verdict alone).
    status = subprocess.run(
        [sys.executable, "-m", "racemap.cli", "status", "--database-url", applied_db.url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert status.returncode == 1, status.stderr
    assert status.stderr.splitlines() == [
        "last sync failed at dbt_build: interrupted during dbt_build: run racemap sync again"
    ]


def test_status_after_a_run_killed_in_its_build_is_not_ok(applied_db, tmp_path, capsys):
    """dbt replaces the tables the attention view reads by dropping them with the view, and
    makes the view again later in the build: a run SIGKILLed in between left no view, and
    racemap status said "ok", exit 0, until the next run, whatever needed a person. While a run
    builds, status says that run is rebuilding the mapping."""
    url = applied_db.url
    with applied_db.transaction() as conn, conn.cursor() as cur:  # keys set by hand: attention
        cur.execute("update public.races set openf1_meeting_key = 999999 where id = '1100'")
    assert cli_main(["status", "--database-url", url]) == 3
    capsys.readouterr()
    proc = _start(applied_db, tmp_path / "r")
    try:
        gone = "select to_regclass('racemap.races_needing_attention') is null"
        while not query(applied_db, gone)[0][0]:
            assert proc.poll() is None, "the run ended before its build dropped the view"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=300)
    assert query(applied_db, gone) == [(True,)]
    assert cli_main(["status", "--database-url", url]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "failed at dbt_build: did not finish: it stopped without a word (killed, or its machine"
        " or database stopped)"
    ]
    # The killed run's row removed (as if the run had never been recorded): the last finished
    # run was ok, and the view it reads is gone.
    query(applied_db, "delete from racemap.runs where finished_at is null")
    assert cli_main(["status", "--database-url", url]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "racemap: the database is not as racemap's last build left it (relation"
        ' "racemap.races_needing_attention" does not exist): run racemap run'
    ]
    assert cli_main(["status", "--database-url", url, "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["verdict"] == "failed"
    # A lookup answers the keys the races table holds (it failed, exit 1, as in every build).
    for kind in ([], ["--session", "sprint"]):
        assert cli_main(["lookup", "--race-id", "1125", *kind, "--database-url", url]) == 0
        out, err = capsys.readouterr()
        assert out.startswith("race 1125: meeting_key 1233, session_key 967")
        assert err.startswith("attention: not checked: racemap.races_needing_attention is not")
    with lock_held(applied_db, "run"):  # a run building now
        assert cli_main(["status", "--database-url", url]) == 1
    err = capsys.readouterr().err
    assert "racemap run 20261125T120000Z-abcdef on " in err
    assert "is rebuilding the mapping now" in err and "racemap status again" in err


def test_a_sync_killed_outright_is_a_failed_sync_at_its_stage(applied_db, tmp_path, capsys):
    """As a run's: SIGKILLed where it waits in its dbt build, the sync is in racemap.sync_runs,
    unfinished at dbt_build, and racemap status fails on it (it said nothing of it)."""
    with _sync_held_in_its_build(applied_db, tmp_path / "r") as proc:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=300)
    assert cli_main(["status", "--database-url", applied_db.url]) == 1
    out, err = capsys.readouterr()
    assert ", never finished: failed (stopped at dbt_build: did not finish" in out
    assert err.splitlines() == [
        "last sync failed at dbt_build: did not finish: it stopped without a word (killed, or"
        " its machine or database stopped): run racemap sync again"
    ]


def test_a_run_killed_outright_is_a_failed_run_at_its_stage(applied_db, tmp_path, capsys):
    """SIGKILL (the OOM killer, a machine stopped) leaves no handler to record the verdict: the
    run is in racemap.runs from its start, unfinished at the stage it is in. It left no row, and
    racemap status showed the run before it (ok, exit 0) beside the keys the killed run had
    applied. While the run lives, status shows the last finished run."""
    url = applied_db.url
    before = query(applied_db, "select run_id from racemap.runs")
    proc = _start(applied_db, tmp_path / "r")
    try:
        at_validate = "select run_id from racemap.runs where stopped_at = 'validate'"
        while not query(applied_db, at_validate):
            assert proc.poll() is None, "the run ended before its validate stage"
            time.sleep(0.05)
        assert cli_main(["status", "--json", "--database-url", url]) == 0
        assert [(json.loads(capsys.readouterr().out)["last_run"]["run_id"],)] == before
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=300)
    (killed,) = query(applied_db, at_validate)[0]
    assert cli_main(["status", "--database-url", url]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines()[0].startswith(f"last run  {killed}, started ")
    assert out.splitlines()[0].endswith(", never finished: failed")
    assert err.splitlines() == [
        "failed at validate: did not finish: it stopped without a word (killed, or its machine"
        " or database stopped)"
    ]
    # The next run is the last one, and compares with the last run that kept its state.
    assert cli_main(["run", *offline_args(tmp_path / "r"), "--database-url", url]) == 0
    capsys.readouterr()
    assert cli_main(["status", "--database-url", url]) == 0
    rows = query(applied_db, "select verdict, finished_at is null from racemap.runs")
    assert sorted(rows) == [("failed", True), ("ok", False), ("ok", False)]


def test_gx_files_a_killed_write_left_torn_stop_no_later_check(applied_db, tmp_path, capsys):
    """Great Expectations writes its suites, validation definitions and checkpoints in place
    (truncated, then written): a command SIGKILLed in between leaves one cut short or empty,
    and every later checkpoint of the database stopped on it ("unexpected JSONDecodeError")
    until someone found the file and deleted it."""
    context = state_dir(applied_db) / "gx-root" / "gx"
    suite = context / "expectations" / "race_openf1_mapping.json"
    suite.write_text(suite.read_text()[:100])  # cut short
    (context / "checkpoints" / "raw.json").write_text("")  # truncated, not yet written
    args = ["validate", "--database-url", applied_db.url, "--reports-dir", str(tmp_path)]
    assert cli_main(args) == 0, capsys.readouterr().err
    assert json.loads(suite.read_text())["name"] == "race_openf1_mapping"  # made again
    assert json.loads((context / "checkpoints" / "raw.json").read_text())["name"] == "raw"


def test_an_interrupt_is_one_line_recorded_with_its_stage(demo_db, tmp_path):
    # SIGTERM (a scheduler stopping the job) to racemap alone, while it loads.
    code, err = _interrupt_at(demo_db, tmp_path / "r", "load", signal.SIGTERM, False)
    assert code == 143
    _assert_one_line(err, "load")
    assert _last_run(demo_db)[:2] == ("failed", "load")
    # The killed run's set is replaced whole: nothing but the published one is left.
    assert len(list((tmp_path / "r").glob(".run-*"))) == 1

    # Ctrl-C inside the apply's transaction: held on a lock the test holds, interrupted there.
    with _held_in_the_apply(demo_db, tmp_path / "r") as proc:
        os.killpg(proc.pid, signal.SIGINT)
    _out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130
    _assert_one_line(err, "apply")
    assert _last_run(demo_db)[:2] == ("failed", "apply")
    # Its transaction rolled back whole, and the lock went with the run.
    assert query(demo_db, "select count(*) from racemap.mapping_history") == [(0,)]
    assert query(demo_db, "select pg_try_advisory_lock(%s, %s)", LOCK_KEYS) == [(True,)]


# A command whose Ctrl-C lands in a finalizer: Python reports a KeyboardInterrupt raised in a
# __del__ as unraisable ("Exception ignored in ...") and carries on, as it does when the garbage
# collector runs one while dbt builds. (A run once exited 0 after Ctrl-C during dbt_build.)
_DROPPED_INTERRUPT = """
import gc, os, signal, sys
from racemap import cli
from racemap.pipeline import Stages

class Finalized:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGINT)
        sum(range(10_000))  # the handler runs here, inside __del__

def command(args):
    stages = Stages(print)
    try:
        with stages.stage("dbt_build"):
            cycle = Finalized()
            cycle.itself = cycle
            del cycle
            gc.collect()
            print("the stage went on")
        with stages.stage("apply"):
            print("the next stage ran")
    except KeyboardInterrupt as exc:
        print(f"stopped during {stages.current}: signal {exc.signum}")
    return 0  # as if it had finished: the command line still exits 130

cli.COMMANDS["status"] = command
sys.exit(cli.main(["status"]))
"""


def test_an_interrupt_python_dropped_stops_the_run_at_the_stages_end():
    done = subprocess.run(
        [sys.executable, "-c", _DROPPED_INTERRUPT], capture_output=True, text=True, timeout=120
    )
    assert done.stdout.splitlines() == [
        "-> dbt_build",
        "the stage went on",
        f"stopped during dbt_build: signal {int(signal.SIGINT)}",
    ]
    assert done.returncode == 130
    # One line: no "Exception ignored in" report of the dropped KeyboardInterrupt.
    assert done.stderr == "racemap: interrupted\n", done.stderr


# Ctrl-C before dbt has read its flags (in a sync, the process's first dbt command): dbt's
# import-time console logger was still in place and printed its "Encountered an error" and
# traceback of the interrupt.
_INTERRUPT_BEFORE_DBT_READS_ITS_FLAGS = """
from dbt.cli.flags import Flags
from racemap.errors import Interrupted
from racemap.mapping.dbt import invoke

def interrupted(self, *args, **kwargs):
    raise Interrupted("interrupted", 2)

Flags.__init__ = interrupted
try:
    invoke(["parse", "--no-write-json"])
except Interrupted:
    pass
"""


def test_an_interrupt_before_dbt_reads_its_flags_prints_nothing_of_dbts():
    done = subprocess.run(
        [sys.executable, "-c", _INTERRUPT_BEFORE_DBT_READS_ITS_FLAGS],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (done.stdout, done.stderr) == ("", "")
