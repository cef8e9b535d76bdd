"""racemap's own tables under alembic, on a real PostgreSQL: an empty database, a database made
by the release before alembic (tests/fixtures/schema_before_alembic.sql), twice, two at once, and
a role that may not create them."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg2
import pytest
from conftest import SCRATCH, query

from racemap import migrations
from racemap.errors import RacemapError
from racemap.openf1 import endpoints

BEFORE_ALEMBIC = Path(__file__).parent / "fixtures" / "schema_before_alembic.sql"
OUR_SCHEMAS = ("raw", "racemap")


def columns(db) -> dict:
    """(schema, table) -> [(column, type, nullable, default)] of racemap's schemas."""
    rows = query(
        db,
        "select table_schema, table_name, column_name, data_type, is_nullable,"
        " regexp_replace(coalesce(column_default, ''), '_seq''::regclass', '')"
        " from information_schema.columns where table_schema = any(%s)"
        " order by table_schema, table_name, ordinal_position",
        (list(OUR_SCHEMAS),),
    )
    found: dict = {}
    for schema, table, *column in rows:
        found.setdefault((schema, table), []).append(tuple(column))
    return found


def constraints(db) -> set:
    return set(
        query(
            db,
            "select conrelid::regclass::text, contype, pg_get_constraintdef(oid)"
            " from pg_constraint where connamespace = any(select oid from pg_namespace"
            " where nspname = any(%s))",
            (list(OUR_SCHEMAS),),
        )
    )


def built_before_alembic(db) -> None:
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(BEFORE_ALEMBIC.read_text())


def everything(db) -> dict:
    """Every row of racemap's tables before alembic, as text: what must survive."""
    keys = {
        "raw.openf1_meetings": "meeting_key",
        "raw.openf1_sessions": "session_key",
        "raw.openf1_loads": "load_id",
        "raw.openf1_rejects": "reject_id",
        "racemap.mapping_runs": "run_id",
        "racemap.mapping_history": "history_id",
    }
    return {t: query(db, f"select to_jsonb(t) from {t} t order by {k}") for t, k in keys.items()}


def test_an_empty_database_upgrades_to_the_head_revision(fresh_db):
    assert migrations.upgrade(fresh_db) == migrations.head() == "0008_unfinished_runs"
    with fresh_db.transaction() as conn:
        assert migrations.current(conn) == migrations.head()
    tables = columns(fresh_db)
    assert set(tables) == {
        ("raw", "openf1_meetings"),
        ("raw", "openf1_sessions"),
        ("raw", "openf1_session_results"),
        ("raw", "openf1_starting_grid"),
        ("raw", "openf1_loads"),
        ("raw", "openf1_rejects"),
        ("racemap", "mapping_runs"),
        ("racemap", "mapping_history"),
        ("racemap", "alembic_version"),
        ("racemap", "runs"),
        ("racemap", "run_race_states"),
        ("racemap", "run_openf1_states"),
        ("racemap", "run_changes"),
        ("racemap", "sync_runs"),
        *(("raw", f"openf1_{e.name}") for e in endpoints.RACE_DATA),
    }
    for endpoint in endpoints.REGISTRY:  # the registry and the tables agree
        table = tuple(endpoint.table.split("."))
        assert [c[0] for c in tables[table]][: len(endpoint.columns)] == endpoint.columns
        assert [c[2] for c in tables[table] if c[0] in endpoint.keys] == ["NO"] * len(endpoint.keys)
    assert [c[:3] for c in tables[("raw", "openf1_session_results")]] == [
        ("session_key", "integer", "NO"),
        ("driver_number", "integer", "NO"),
        ("meeting_key", "integer", "YES"),
        ("position", "integer", "YES"),
        ("number_of_laps", "integer", "YES"),
        ("points", "numeric", "YES"),
        ("dnf", "boolean", "YES"),
        ("dns", "boolean", "YES"),
        ("dsq", "boolean", "YES"),
        ("duration", "jsonb", "YES"),
        ("gap_to_leader", "jsonb", "YES"),
        ("record", "jsonb", "NO"),
        ("source", "text", "NO"),
        ("fetched_at", "timestamp with time zone", "NO"),
        ("removed_at", "timestamp with time zone", "YES"),
        ("loaded_at", "timestamp with time zone", "NO"),
    ]
    assert [c[:3] for c in tables[("raw", "openf1_starting_grid")]] == [
        ("session_key", "integer", "NO"),
        ("driver_number", "integer", "NO"),
        ("meeting_key", "integer", "YES"),
        ("position", "integer", "YES"),
        ("lap_duration", "double precision", "YES"),
        ("record", "jsonb", "NO"),
        ("source", "text", "NO"),
        ("fetched_at", "timestamp with time zone", "NO"),
        ("removed_at", "timestamp with time zone", "YES"),
        ("loaded_at", "timestamp with time zone", "NO"),
    ]


def test_a_database_made_before_alembic_is_upgraded_in_place_and_keeps_its_rows(fresh_db):
    built_before_alembic(fresh_db)
    before = everything(fresh_db)
    assert sum(len(rows) for rows in before.values()) == 10

    assert migrations.upgrade(fresh_db) == migrations.head()

    upgraded = everything(fresh_db)
    for table, rows in before.items():
        # Every old row is there with every old value (new columns may have been added).
        assert [{k: r[0][k] for k in rows[i][0]} for i, r in enumerate(upgraded[table])] == [
            r[0] for r in rows
        ], table
    # Where the old rows came from: their season's latest successful fetch (2023's meetings
    # live, 2024's from the snapshot; no session fetch succeeded: live), fetched when loaded.
    assert query(
        fresh_db,
        "select 'meeting', meeting_key, source, fetched_at = loaded_at, removed_at"
        " from raw.openf1_meetings union all"
        " select 'session', session_key, source, fetched_at = loaded_at, removed_at"
        " from raw.openf1_sessions order by 1, 2",
    ) == [
        ("meeting", 1141, "live", True, None),
        ("meeting", 1229, "snapshot", True, None),
        ("session", 7953, "live", True, None),
        ("session", 9472, "live", True, None),
    ]
    assert query(fresh_db, "select distinct rows_removed from raw.openf1_loads") == [(0,)]
    # The same tables, columns and constraints as a database upgraded from empty.
    empty = _another_database()
    try:
        migrations.upgrade(empty)
        assert columns(fresh_db) == columns(empty)
        assert constraints(fresh_db) == constraints(empty)
    finally:
        _drop(empty)


def test_upgrading_twice_changes_nothing(fresh_db):
    built_before_alembic(fresh_db)
    migrations.upgrade(fresh_db)
    shape, rows = columns(fresh_db), everything(fresh_db)

    with fresh_db.transaction() as conn:  # a psycopg2 connection works as well as a Database
        assert migrations.upgrade(conn) == migrations.head()

    assert columns(fresh_db) == shape and everything(fresh_db) == rows
    assert query(fresh_db, "select version_num from racemap.alembic_version") == [
        (migrations.head(),)
    ]


def test_a_database_at_the_head_is_only_read_without_alembic(fresh_db):
    """The routine case of every run: the version is read on a plain connection, and neither
    alembic nor SQLAlchemy is imported (half a second of a warm run). The file names it reads
    the newest revision from are alembic's own head."""
    migrations.upgrade(fresh_db)
    assert migrations.newest_script() == migrations.head()
    code = (
        "import sys; from racemap import migrations; from racemap.db import parse_database_url;"
        f" print(migrations.upgrade(parse_database_url({fresh_db.url!r})),"
        " sorted({'alembic', 'sqlalchemy'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [migrations.head(), "[]"]


def test_two_upgrades_at_once_do_not_collide(fresh_db):
    built_before_alembic(fresh_db)
    outcomes: list = []

    def upgrade():
        try:
            outcomes.append(migrations.upgrade(fresh_db))
        except Exception as exc:  # recorded, so the assertion below names it
            outcomes.append(exc)

    threads = [threading.Thread(target=upgrade) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert outcomes == [migrations.head()] * 4
    assert query(fresh_db, "select count(*) from racemap.alembic_version") == [(1,)]


def test_an_upgrade_waits_for_one_in_progress(fresh_db, monkeypatch):
    """Another upgrade holds the lock: this one waits, then fails with one line after the
    timeout; nothing is half-created."""
    monkeypatch.setattr(migrations, "LOCK_TIMEOUT", "1s")
    holder = fresh_db.connect()
    try:
        with holder.cursor() as cur:
            cur.execute("select pg_advisory_xact_lock(%s)", (migrations.LOCK_KEY,))
        started = time.monotonic()
        with pytest.raises(RacemapError) as failed:
            migrations.upgrade(fresh_db)
        assert time.monotonic() - started >= 1
        assert str(failed.value) == (
            f"racemap's tables in database {fresh_db.dbname} stayed locked for 1s during their "
            "upgrade (another racemap upgrading them, or an open transaction holding them): "
            "try again"
        )
        assert query(fresh_db, "select to_regnamespace('raw'), to_regnamespace('racemap')") == [
            (None, None)
        ]
        holder.rollback()  # the other upgrade ends: the lock is free
        assert migrations.upgrade(fresh_db) == migrations.head()
    finally:
        holder.close()


def test_a_database_a_newer_racemap_upgraded_is_refused_in_one_line(fresh_db):
    """A release older than the database's tables (an operator who went back to the previous
    release after an upgrade) changes nothing there and says what to run, in one line: alembic
    said only "Can't locate revision", and a run called that unexpected."""
    migrations.upgrade(fresh_db)
    query(fresh_db, "update racemap.alembic_version set version_num = '0099_from_the_future'")
    shape = columns(fresh_db)
    for revision in ("head", migrations.head()):  # the plain read, and alembic's locked path
        with pytest.raises(RacemapError) as refused:
            migrations.upgrade(fresh_db, revision)
        assert str(refused.value) == (
            f"database {fresh_db.dbname} was upgraded by a newer racemap (its tables are at "
            f"revision 0099_from_the_future; this racemap knows up to {migrations.head()}): "
            "run that newer racemap release (or a later one) on it; this one changes nothing "
            "there"
        )
    assert columns(fresh_db) == shape
    assert query(fresh_db, "select version_num from racemap.alembic_version") == [
        ("0099_from_the_future",)
    ]


@pytest.fixture
def role(fresh_db):
    """A login role of its own (trust authentication), dropped afterwards."""
    with SCRATCH.role(fresh_db) as name:
        yield name


def test_a_role_without_create_gets_one_line_naming_the_grant(fresh_db, role):
    import dataclasses

    as_role = dataclasses.replace(fresh_db, user=role)
    with pytest.raises(RacemapError) as failed:
        migrations.upgrade(as_role)
    message = str(failed.value)
    assert "\n" not in message
    assert message.startswith(
        f"cannot create or upgrade racemap's tables in database {fresh_db.dbname}"
    )
    assert f"GRANT CREATE ON DATABASE {fresh_db.dbname} TO {role}" in message

    query(fresh_db, f"grant create on database {fresh_db.dbname} to {role}")
    assert migrations.upgrade(as_role) == migrations.head()
    assert query(
        fresh_db, "select nspowner::regrole::text from pg_namespace where nspname = 'raw'"
    ) == [(role,)]


def test_a_role_without_create_may_run_once_an_owner_upgraded(fresh_db, role):
    import dataclasses

    migrations.upgrade(fresh_db)
    query(fresh_db, f"grant usage on schema racemap to {role}")
    query(fresh_db, f"grant select on racemap.alembic_version to {role}")
    assert migrations.upgrade(dataclasses.replace(fresh_db, user=role)) == migrations.head()


def _another_database():
    from conftest import create_database

    return create_database()


def _drop(db):
    from conftest import drop_database

    drop_database(db)


__all__ = ["psycopg2"]


def test_each_revision_creates_the_tables_it_says(fresh_db):
    """migrations.CREATES (what an upgrade refuses to find there before it) is what each script
    really creates: upgraded revision by revision, every new table is in its row."""
    before: set = set()
    for revision in migrations.scripts():
        migrations.upgrade(fresh_db, revision)
        now = {f"{schema}.{table}" for schema, table in columns(fresh_db)}
        new = now - before - {"racemap.alembic_version"}
        assert new == set(migrations.CREATES.get(revision, ())), revision
        before = now


def test_an_upgrade_refuses_a_table_of_the_applications_that_a_new_script_would_adopt(fresh_db):
    """The application made raw.openf1_laps of its own between two racemap releases: the
    upgrade that creates racemap's (create table if not exists) took it for racemap's and failed
    on its index ('column "meeting_key" does not exist'), or, had the table that column, kept it
    for the sync to write into. Now one line naming it, nothing changed."""
    migrations.upgrade(fresh_db, "0004_monitoring")
    query(fresh_db, "create table raw.openf1_laps (lap integer, note text)")
    with pytest.raises(RacemapError) as refused:
        migrations.upgrade(fresh_db)
    assert str(refused.value).startswith(
        f"racemap's schemas in database {fresh_db.dbname} hold objects racemap did not make: "
        "raw.openf1_laps (table): "
    )
    assert query(fresh_db, "select version_num from racemap.alembic_version") == [
        ("0004_monitoring",)
    ]
    assert query(fresh_db, "select to_regclass('raw.openf1_drivers')") == [(None,)]
