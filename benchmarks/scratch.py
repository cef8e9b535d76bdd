"""Throw-away databases: every benchmark runs in databases it creates and drops.

``scratch_server`` is the server the benchmarks work on: the one ``--database-url`` (or
``DATABASE_URL``) names, or, when none is given, an embedded PostgreSQL (pgserver) whose data
directory is a temporary directory, stopped and deleted at the end. The user's own embedded
database (``.racemap/pgdata``) is never started or touched. ``Scratch`` creates databases on that
server under one prefix and drops them all at the end (unless told to keep them).

The tests have their own fixtures for the same job (``tests/conftest.py``); the benchmarks cannot
import from ``tests/``, hence this module.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from psycopg2 import sql

from racemap.db import Database, parse_database_url, start_embedded
from racemap.settings import load_environment, temporary_environ


@contextmanager
def scratch_server(database_url: str | None = None) -> Iterator[Database]:
    """The server to create scratch databases on: the URL's, else a temporary embedded one."""
    url = database_url or load_environment().database_url
    if url:
        yield parse_database_url(url)
        return
    import pgserver

    with tempfile.TemporaryDirectory(prefix="racemap-bench-pgdata-") as tmp:
        pgdata = Path(tmp) / "pgdata"
        server = start_embedded(pgdata)
        try:
            # Seen as a plain server from here on: child processes reach it by its socket URL.
            yield parse_database_url(server.url)
        finally:
            # The same handle start_embedded got: the last one in this process, so it stops.
            pgserver.get_server(pgdata).cleanup()


@dataclass
class Scratch:
    """Throw-away databases on one server, dropped at the end (unless kept)."""

    server: Database
    prefix: str = field(default_factory=lambda: f"racemap_bench_{uuid.uuid4().hex[:8]}")
    keep: bool = False
    created: list[Database] = field(default_factory=list)

    def admin(self):
        """An autocommit connection to the server's own database (CREATE/DROP DATABASE)."""
        conn = self.server.connect()
        conn.autocommit = True
        return conn

    def create(self, part: str) -> Database:
        name = f"{self.prefix}_{part}"
        conn = self.admin()
        try:
            with conn.cursor() as cur:
                cur.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        finally:
            conn.close()
        # The server's URL options too (sslmode, ...): no scratch database gets less.
        db = replace(self.server, dbname=name, embedded=False, _server=None)
        self.created.append(db)
        return db

    def drop_all(self) -> None:
        if self.keep:
            return
        conn = self.admin()
        try:
            with conn.cursor() as cur:
                for db in self.created:
                    cur.execute(
                        sql.SQL("drop database if exists {} with (force)").format(
                            sql.Identifier(db.dbname)
                        )
                    )
        finally:
            conn.close()
        self.created.clear()

    def server_version(self) -> str:
        conn = self.admin()
        try:
            with conn.cursor() as cur:
                cur.execute("show server_version")
                return cur.fetchone()[0]
        finally:
            conn.close()


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
