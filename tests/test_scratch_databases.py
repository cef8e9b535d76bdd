"""The throw-away databases of the tests and the benchmarks: what a killed session leaves behind
is dropped by the next one, and nothing of a session still running, another host's or a kept
one."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

from conftest import SCRATCH
from psycopg2 import sql

from racemap.testing.databases import OWNER, this_host


def _databases(prefix: str) -> set[str]:
    rows = SCRATCH.execute(
        ("select datname from pg_database where datname like %s", (prefix + "%",))
    )
    return {name for (name,) in rows}


def _roles() -> set[str]:
    return {name for (name,) in SCRATCH.execute("select rolname from pg_roles")}


def _ended_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    return int(done.stdout)


def test_the_orphans_of_an_ended_process_are_dropped_and_nothing_else():
    ended = dataclasses.replace(SCRATCH, prefix="racemap_test_orphan", created=[])
    ended.owner_pid = _ended_pid()
    running = dataclasses.replace(SCRATCH, prefix="racemap_test_alive", created=[])
    kept = dataclasses.replace(SCRATCH, prefix="racemap_test_kept", keep=True, created=[])
    orphan, alive, kept_db = ended.create(), running.create(), kept.create()
    elsewhere = running.create()
    other_host = OWNER.format(host=this_host() + "-elsewhere", pid=ended.owner_pid)
    SCRATCH.execute(
        sql.SQL("comment on database {} is {}").format(
            sql.Identifier(elsewhere.dbname), sql.Literal(other_host)
        )
    )
    try:
        with ended.role() as orphan_role:  # its block ends after the sweep: nothing to drop
            dropped = SCRATCH.drop_orphans()
            assert orphan.dbname in dropped and orphan_role in dropped
            assert orphan.dbname not in _databases("racemap_test_orphan")
            assert orphan_role not in _roles()
            remaining = _databases("racemap_test_")
            assert {alive.dbname, kept_db.dbname, elsewhere.dbname} <= remaining
            # A second pass drops none of them.
            assert not {alive.dbname, kept_db.dbname, elsewhere.dbname} & set(
                SCRATCH.drop_orphans()
            )
    finally:
        for db in (alive, kept_db, elsewhere):
            SCRATCH.drop(db)


def test_a_test_sessions_databases_are_labelled_with_its_controller():
    """Under pytest-xdist a worker's databases carry the controller's pid (the worker's
    parent), which lives until every worker is done with the shared template."""
    db = SCRATCH.create()
    try:
        ((comment,),) = SCRATCH.execute(
            (
                "select shobj_description(oid, 'pg_database') from pg_database where datname = %s",
                (db.dbname,),
            )
        )
        assert comment == OWNER.format(host=this_host(), pid=SCRATCH.owner_pid)
    finally:
        SCRATCH.drop(db)
