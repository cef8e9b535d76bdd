"""What the benchmarks do in their throw-away databases.

The databases themselves come from :mod:`racemap.testing.databases` (``Scratch``,
``scratch_server``), which the tests use too: every benchmark runs in databases it creates and
drops, on the server ``--database-url`` (or ``DATABASE_URL``) names, else on a temporary embedded
PostgreSQL.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from racemap.db import Database
from racemap.settings import load_environment, temporary_environ
from racemap.testing import databases

Scratch = databases.Scratch
scratch_server = databases.scratch_server


def bench_scratch(server: Database, keep: bool = False) -> Scratch:
    """The benchmarks' databases, under a prefix of their own that ``racemap bench`` prints."""
    return Scratch(server, prefix=f"racemap_bench_{uuid.uuid4().hex[:8]}", keep=keep)


def using(db: Database):
    """dbt (in this process) and libpq clients work on ``db`` for the block."""
    return temporary_environ(**db.libpq_env())


@contextmanager
def scratch_tool_dirs() -> Iterator[Path]:
    """dbt's target/ and logs and the runs' local state (their GX context) in a temporary
    directory, unless already set."""
    with tempfile.TemporaryDirectory(prefix="racemap-bench-") as tmp:
        base = Path(tmp)
        chosen = {
            key: os.environ.get(key) or str(base / sub)
            for key, sub in (
                ("DBT_TARGET_PATH", "dbt-target"),
                ("DBT_LOG_PATH", "dbt-logs"),
                ("RACEMAP_STATE_DIR", "state"),
            )
        }
        with temporary_environ(**chosen):
            yield base


def rows(db: Database, statement, params=None) -> list[tuple]:
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(statement, params)
        return cur.fetchall() if cur.description else []


def execute(db: Database, statement, params=None) -> None:
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(statement, params)


def prepare_demo_database(db: Database, variables: dict) -> None:
    """The demo races (as on the embedded database), the raw tables, the key columns.

    The caller has pointed dbt at ``db`` (``using(db)``).
    """
    from racemap.demo import create_demo_tables
    from racemap.mapping import dbt
    from racemap.openf1.loader import ensure_raw_tables

    with db.transaction() as conn:
        create_demo_tables(conn)
        ensure_raw_tables(conn)
    dbt.migrate(variables)


def mapped(db: Database, seasons) -> dict[str, tuple[int, int]]:
    """The mapped races of ``seasons``: race id -> (meeting key, session key)."""
    found = rows(
        db,
        "select race_id, meeting_key, session_key from racemap.race_openf1_mapping"
        " where status = 'mapped' and season = any(%s)",
        (list(seasons),),
    )
    return {r[0]: (r[1], r[2]) for r in found}


def local_openf1_client(base_url: str, **options):
    """A client of the bench's local OpenF1 server: anonymous, whatever the shell's
    ``OPENF1_USERNAME`` / ``OPENF1_PASSWORD`` (the server issues no token, and the account's
    password is not for it); the rest of the settings as the environment gives them."""
    from racemap.openf1.client import OpenF1Client

    anonymous = load_environment().model_copy(update={"openf1_username": "", "openf1_password": ""})
    return OpenF1Client(base_url=base_url, environment=anonymous, **options)
