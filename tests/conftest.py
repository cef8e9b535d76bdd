"""Shared fixtures: a fresh PostgreSQL database per test that needs one, on a real server.

The server is decided by scripts/test_server.py, as for `make lint` and `make test`:
$RACEMAP_TEST_DATABASE_URL, else the PostgreSQL the PG* variables name (127.0.0.1:5432 by
default; trust auth, CI has one), else the embedded pgserver in .racemap/test-pgdata. This
process and its children get that server's libpq variables and no other (a developer's
PGSSLMODE never reaches a test). Each fixture database is created empty and dropped afterwards,
so tests never see each other's tables. dbt's target/ and logs, the Great Expectations context
and the reports all go to the test's temporary directories, so test runs never collide.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import os
import pickle
import shutil
import tempfile
import threading
from pathlib import Path

import psycopg2
import pytest

from racemap.db import Database, parse_database_url
from racemap.paths import PROJECT_DIR
from racemap.pipeline import RunOptions, run
from racemap.runtime import run_lock, state_dir
from racemap.testing.databases import Scratch


def _load_test_server():
    spec = importlib.util.spec_from_file_location(
        "racemap_test_server", PROJECT_DIR / "scripts" / "test_server.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


test_server = _load_test_server()
_SERVER, SERVER_LINE = test_server.decide()
_ANNOUNCED = os.environ.get(test_server.LINE_VARIABLE) == SERVER_LINE  # by `make test`
_ENV = test_server.suite_env(_SERVER, SERVER_LINE, dict(os.environ))
os.environ.clear()
os.environ.update(_ENV)
SERVER_URL = _SERVER.url


ORPHANS: list[str] = []  # scratch databases and roles of killed test sessions and benches


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session):
    """The session's controller (or a session without xdist) drops what killed test sessions
    and benchmarks of this host left on the server (``Scratch.drop_orphans``)."""
    if not hasattr(session.config, "workerinput"):
        ORPHANS.extend(SCRATCH.drop_orphans())


def pytest_report_header(config):
    lines = [] if _ANNOUNCED else [SERVER_LINE]
    if ORPHANS:
        lines.append(f"dropped what killed test sessions or benches left: {', '.join(ORPHANS)}")
    return lines or None


# The files that take longest (worker seconds, pytest -n 3 on 2 cores, --durations, 2026-12-06),
# started first: with --dist loadfile --no-loadscope-reorder (the Makefile's PYTEST_ARGS)
# pytest-xdist hands out whole files in collection order, and a long file handed out last keeps
# one worker busy after the others have finished. (xdist's default reorder sorts files by their
# number of tests, which put the three-test end-to-end bench file near the end.)
SLOWEST_FILES = (
    "test_race_data.py",
    "test_interrupted_runs.py",
    "test_verdict.py",
    "test_unattended.py",
    "test_sync.py",
    "test_bench_end_to_end.py",
    "test_loader.py",
    "test_apply.py",
    "test_cli.py",
    "test_report_sets.py",
    "test_monitoring.py",
    "test_bench.py",
    "test_weekend.py",
    "test_secrets.py",
    "test_plain_dbt.py",
    "test_dbt_docs.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: n for n, name in enumerate(SLOWEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: files keep order


AS_OF = "2026-11-25T00:00:00Z"  # pins not_yet_run so results do not drift with the calendar
SECRET = "Pw-d0-not-leak-7f3a9c"  # the password of the shared run's URL


TOOL_DIRS: dict[str, Path] = {}


def gx_root() -> Path:
    """The GX context of the tests that run a checkpoint alone (a run uses its state's)."""
    return TOOL_DIRS["gx_root"]


OPENF1_SETTINGS = (
    "OPENF1_URL",
    "OPENF1_USERNAME",
    "OPENF1_PASSWORD",
    "OPENF1_RETRY_SECONDS",
    "OPENF1_RATE_LIMIT",
)


@pytest.fixture(scope="session", autouse=True)
def _isolated_tool_dirs(tmp_path_factory):
    base = tmp_path_factory.mktemp("tools")
    saved = {
        k: os.environ.get(k)
        for k in (
            "DBT_TARGET_PATH",
            "DBT_LOG_PATH",
            "RACEMAP_STATE_DIR",
            "DATABASE_URL",
            *OPENF1_SETTINGS,
            "RACEMAP_NOTIFY_URL",
        )
    }
    os.environ["DBT_TARGET_PATH"] = str(base / "dbt-target")
    os.environ["DBT_LOG_PATH"] = str(base / "dbt-logs")
    TOOL_DIRS["gx_root"] = base / "gx-root"  # the GX context of checkpoints run alone
    os.environ["RACEMAP_STATE_DIR"] = str(base / "state")  # per-database dbt target, logs, GX
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("RACEMAP_NOTIFY_URL", None)  # a developer's webhook never hears the tests
    # A developer's OpenF1 account, retry budget or rate never reaches the tests.
    for name in OPENF1_SETTINGS:
        os.environ.pop(name, None)
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


# The fixtures' databases: created on the test server, dropped after use; orphans (of a killed
# session) once the session's controller has ended: pytest-xdist's workers are its children.
SCRATCH = Scratch(
    parse_database_url(SERVER_URL),
    prefix="racemap_test",
    owner_pid=os.getppid() if os.environ.get("PYTEST_XDIST_WORKER") else os.getpid(),
)


def create_database(prefix: str = "racemap_test", template: Database | None = None) -> Database:
    """An empty database, or a copy of ``template`` (PostgreSQL copies it file by file)."""
    return dataclasses.replace(SCRATCH, prefix=prefix, created=[]).create(template=template)


def drop_database(db: Database) -> None:
    SCRATCH.drop(db)


@pytest.fixture
def server_dir():
    """A short directory outside pytest's temporary root, removed after the test: for a
    pgserver data directory (pgserver runs the server as its own user when the tests run as
    root, and every pytest session that starts resets that root to mode 0700), or for a child
    process's temporary files (a socket's path has at most 107 characters)."""
    path = Path(tempfile.mkdtemp(prefix="racemap-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def fresh_db():
    """An empty database on the real server."""
    db = create_database()
    try:
        yield db
    finally:
        drop_database(db)


def demo_races(db: Database) -> None:
    """The bundled Ergast races and circuits, as on the embedded database."""
    from racemap.demo import create_demo_tables

    with db.transaction() as conn:
        create_demo_tables(conn)


@pytest.fixture
def demo_db(fresh_db):
    """A database holding the demo application's races (every Ergast race since 1950)."""
    demo_races(fresh_db)
    return fresh_db


def run_pipeline(db: Database, reports_dir: Path, **kwargs):
    """racemap run in this process, offline over 2023-2025 unless told otherwise."""
    variables = {"as_of": AS_OF, **kwargs.pop("variables", {})}
    options = RunOptions(
        database_url=db.url,
        seasons=kwargs.pop("seasons", "2023-2025"),
        offline=kwargs.pop("offline", True),
        reports_dir=reports_dir,
        variables=variables,
        log=kwargs.pop("log", lambda *_: None),
        **kwargs,
    )
    return run(options)


def sample_2026(name: str) -> dict:
    """A recorded 2026 OpenF1 record (data/openf1/samples_2026/: not in the bundled snapshot)."""
    import json

    from racemap.paths import DATA_DIR

    return json.loads((DATA_DIR / "openf1" / "samples_2026" / name).read_text())


def store_2026(db: Database, endpoint: str, records: list[dict]) -> None:
    """``records`` stored in ``endpoint``'s raw table as a load of season 2026 stores them."""
    from datetime import UTC, datetime

    from racemap.openf1.client import FetchResult
    from racemap.openf1.loader import ensure_raw_tables, store

    with db.transaction() as conn:
        ensure_raw_tables(conn)
        store(conn, FetchResult(endpoint, 2026, "test", 200, records, 0), "test", datetime.now(UTC))


def query(db: Database, statement: str, params=()) -> list[tuple]:
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(statement, params or None)
        return cur.fetchall() if cur.description else []


def keys(db: Database, race_id: str) -> tuple:
    """(openf1_meeting_key, openf1_session_key) of one race in public.races."""
    return query(
        db,
        "select openf1_meeting_key, openf1_session_key from public.races where id = %s",
        (race_id,),
    )[0]


def mapping_updates(reports: Path, *fields: str) -> dict:
    """mapping_updates.csv of a run: race id to its ``fields`` (one field: the value)."""
    import csv

    with (Path(reports) / "mapping_updates.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    if len(fields) == 1:
        return {row["race_id"]: row[fields[0]] for row in rows}
    return {row["race_id"]: tuple(row[f] for f in fields) for row in rows}


def _mapped_run(db: Database, reports: Path):
    """The demo races and one offline run on ``db``: (result, reports)."""
    demo_races(db)
    # With a password in its URL (trust auth ignores it): no report may contain it.
    return run_pipeline(dataclasses.replace(db, password=SECRET), reports), reports


# Under pytest-xdist, the shared mapped database's folder in the session's temporary directory
# (the controller's, above each worker's): the run's reports, its result and the databases made.
SHARED_TEMPLATE = "mapped-template"
TEMPLATE_STATE: dict = {}  # "dir": the shared run's state directory; "db": its copy's name


@pytest.fixture(scope="session")
def mapped_template(request, tmp_path_factory):
    """One offline run over the demo races for the whole session: (db, result, reports).

    Read-only for tests (``mapped_demo``); tests that change data take a copy (``applied_db``,
    ``built_db``), which PostgreSQL makes in well under a second. Under pytest-xdist the run is
    made once for every worker, by the first that needs it (a file lock), and each worker reads
    a copy of its own: PostgreSQL copies no database another session is connected to, and the
    workers copy theirs test after test. The controller drops the shared one at the end.
    """
    if not hasattr(request.config, "workerinput"):  # no xdist: a database of this process's
        db = create_database()
        try:
            result, reports = _mapped_run(db, tmp_path_factory.mktemp("reports"))
            TEMPLATE_STATE["dir"], TEMPLATE_STATE["db"] = state_dir(db), db.dbname
            yield db, result, reports
        finally:
            drop_database(db)
        return
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp().parent / SHARED_TEMPLATE
    shared.mkdir(exist_ok=True)
    with FileLock(shared / "lock"):
        made = shared / "made.pickle"
        if not made.exists():
            db = create_database()
            with (shared / "databases").open("a") as listing:  # dropped whatever happens next
                listing.write(db.dbname + "\n")
            result, reports = _mapped_run(db, shared / "reports")
            made.write_bytes(pickle.dumps((db, result, reports, state_dir(db))))
        template, result, reports, TEMPLATE_STATE["dir"] = pickle.loads(made.read_bytes())
        own = create_database(template=template)
        TEMPLATE_STATE["db"] = own.dbname
    try:
        yield own, result, reports
    finally:
        drop_database(own)


def pytest_sessionfinish(session):
    """The controller of a pytest-xdist session drops the shared mapped database (its workers
    have finished)."""
    factory = getattr(session.config, "_tmp_path_factory", None)
    if hasattr(session.config, "workerinput") or factory is None:
        return
    listing = factory.getbasetemp() / SHARED_TEMPLATE / "databases"
    if listing.is_file():
        for name in listing.read_text().split():
            drop_database(dataclasses.replace(SCRATCH.server, dbname=name))


@pytest.fixture
def mapped_template_state(mapped_template) -> Path:
    """The local state directory (dbt target and logs, GX context) of the shared run's database:
    under pytest-xdist, in the state folder of the worker that made it."""
    return TEMPLATE_STATE["dir"]


@pytest.fixture
def mapped_demo(mapped_template):
    """The shared mapped database: look, do not change."""
    return mapped_template


# One copy of the shared mapped database at a time in each worker takes one name (the worker's
# template's, with _copy: no other worker or test session has it), and comes with the
# template's state parsed by dbt under that name (_parsed_state): dbt's partial parse holds the
# connection's database name, so a copy under any other name parses in full (2.5 to 4.5 s of a
# run's wall time on 2 cores, dozens of runs in the suite).
NAMED_COPY = {"open": False}


def _parsed_state(db: Database) -> Path:
    """The shared run's state, parsed by dbt as ``db`` (the worker's named copy) with the vars
    the tests' runs use: made by the first named copy, kept for the next ones."""
    kept = state_dir(db, TOOL_DIRS["gx_root"].parent / "parsed-copy-state")
    if not kept.exists():
        from racemap.mapping import dbt
        from racemap.runtime import database_state
        from racemap.settings import validate_vars

        shutil.copytree(TEMPLATE_STATE["dir"], kept, symlinks=True)
        try:
            with database_state(db, kept.parent):
                dbt.parse(validate_vars({"as_of": AS_OF}))
        except BaseException:
            shutil.rmtree(kept, ignore_errors=True)  # the next named copy tries again
            raise
    return kept


@contextlib.contextmanager
def database_copy(template: Database):
    """A copy of ``template`` for the block, dropped afterwards.

    A copy of the shared mapped database comes with the local state of the run that mapped it
    (dbt's target, the kept docs site, the GX context), as a database restored together with
    its state directory would: a run on it is a user's next run, which keeps the docs site, not
    a first one (test_dbt_docs and the tests on ``fresh_db`` and ``demo_db`` run first runs).
    The first copy open in a worker takes the worker's copy name, and its parse is partial (see
    _parsed_state); a second one open at the same time gets a name of its own and parses in
    full. The copy's state directory goes with it (some 20 MB a database)."""
    shared = TEMPLATE_STATE.get("dir") is not None and TEMPLATE_STATE.get("db") == template.dbname
    named = shared and not NAMED_COPY["open"]
    part = f"{TEMPLATE_STATE['db'].removeprefix(SCRATCH.prefix + '_')}_copy" if named else None
    db = SCRATCH.create(part, template=template)
    own = state_dir(db)  # decided once, for both ends
    if named:
        NAMED_COPY["open"] = True
    try:
        if shared:
            source = _parsed_state(db) if named else TEMPLATE_STATE["dir"]
            shutil.copytree(source, own, symlinks=True)
        yield db
    finally:
        if named:
            NAMED_COPY["open"] = False
        SCRATCH.drop(db)
        shutil.rmtree(own, ignore_errors=True)


@pytest.fixture
def applied_db(mapped_template):
    """A copy of the mapped database: the demo races with their 70 keys applied."""
    with database_copy(mapped_template[0]) as db:
        yield db


@pytest.fixture
def built_db(applied_db):
    """Migrated, loaded and built, not applied: mapping_updates holds the 70 fills."""
    with applied_db.transaction() as conn, conn.cursor() as cur:
        cur.execute(
            "update public.races set openf1_meeting_key = null, openf1_session_key = null;"
            " truncate racemap.mapping_history, racemap.mapping_runs"
        )
    return applied_db


__all__ = ["psycopg2"]


def offline_args(reports_dir: Path) -> list[str]:
    """The options of ``racemap run`` offline over 2023-2025 with the pinned AS_OF."""
    return [
        "--offline",
        "--seasons",
        "2023-2025",
        "--var",
        f"as_of={AS_OF}",
        "--reports-dir",
        str(reports_dir),
    ]


def run_command(db: Database, reports_dir: Path, *extra: str) -> tuple[list[str], dict]:
    """``racemap run --offline`` over 2023-2025 as a child process would run it, with its
    environment (the database through DATABASE_URL, no stray PG* variable)."""
    import sys

    args = [sys.executable, "-m", "racemap.cli", "run", *offline_args(reports_dir), *extra]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(DATABASE_URL=db.url, PYTHONUNBUFFERED="1")
    return args, env


def racemap_command(args: list[str], capsys) -> tuple[int, str, str]:
    """``racemap ARGS`` run in this process, as the console script runs it (``cli.main``; a
    usage error is argparse's exit 2): (exit code, standard output, standard error)."""
    from racemap import cli

    try:
        code = cli.main(args)
    except SystemExit as usage:
        code = usage.code
    out, err = capsys.readouterr()
    return code, out, err


@contextlib.contextmanager
def lock_held(db, command: str):
    """Another racemap ``command`` (run 20261125T120000Z-abcdef) holds ``db``'s run lock, in a
    thread, for the block."""
    inside, leave = threading.Event(), threading.Event()

    def hold():
        with run_lock(db, "20261125T120000Z-abcdef", timeout=5, command=command):
            inside.set()
            leave.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert inside.wait(10)
        yield
    finally:
        leave.set()
        holder.join()
