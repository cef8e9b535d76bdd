"""racemap in the application's own database: objects of the application's that bear racemap's
names, its triggers on the races table. racemap either works or stops with one line before it
changes anything, and never alters the application's objects beyond the two key columns."""

from __future__ import annotations

import pytest
from conftest import query, run_pipeline

from racemap import migrations
from racemap.errors import RacemapError


def _key_columns(db) -> list[tuple]:
    return query(
        db,
        "select attname::text from pg_attribute where attrelid = 'public.races'::regclass"
        " and attname like 'openf1_%' order by 1",
    )


def test_the_applications_tables_in_racemaps_schemas_stop_the_first_run(demo_db, tmp_path):
    """The application's raw.openf1_meetings was taken for racemap's (create table if not
    exists) and the upgrade failed on 'column t.year does not exist', after the races table had
    its key columns. The application's other tables in a schema named raw are no obstacle."""
    query(
        demo_db,
        "create schema raw;"
        " create table raw.openf1_meetings (id integer primary key, note text);"
        " insert into raw.openf1_meetings values (1, 'the application''s row');"
        " create table raw.events (id integer)",
    )
    named = "raw.openf1_meetings (table)"
    before = query(demo_db, "select to_jsonb(t) from raw.openf1_meetings t")
    with pytest.raises(RacemapError) as stopped:
        run_pipeline(demo_db, tmp_path / "reports")
    message = str(stopped.value)
    assert "\n" not in message
    assert message.startswith(
        f"racemap's schemas in database {demo_db.dbname} hold objects racemap did not make: "
        f"{named}: "
    )
    assert message.endswith(
        "move them to another schema (ALTER ... SET SCHEMA) or point racemap at another "
        "database (nothing was changed)"
    )
    # Nothing changed: not the races table, not racemap's schemas, not the application's object.
    assert _key_columns(demo_db) == []
    assert query(demo_db, "select to_regclass('racemap.alembic_version')") == [(None,)]
    assert query(demo_db, "select to_jsonb(t) from raw.openf1_meetings t") == before
    # The upgrade itself (racemap sync, restore...) refuses them the same way.
    with pytest.raises(RacemapError) as refused:
        migrations.upgrade(demo_db)
    assert str(refused.value) == message


def test_an_empty_schema_of_the_same_name_is_no_obstacle(fresh_db):
    query(fresh_db, "create schema raw")
    with fresh_db.transaction() as conn:
        assert migrations.foreign_objects(conn) == []
    assert migrations.upgrade(fresh_db) == migrations.head()
    # Once racemap has migrated the database, its schemas are its own.
    with fresh_db.transaction() as conn:
        assert migrations.foreign_objects(conn) == []


def test_the_check_leaves_a_role_that_cannot_read_racemaps_schema_to_the_grants_check(fresh_db):
    """Another role's racemap schema, unreadable to this one: the check reads only the catalog
    and leaves the line to the grants check (it failed on 'permission denied for schema')."""
    import dataclasses

    from conftest import SCRATCH

    migrations.upgrade(fresh_db)
    with SCRATCH.role(fresh_db) as role:
        other = dataclasses.replace(fresh_db, user=role)
        with other.transaction() as conn:
            migrations.check_database(conn, fresh_db.dbname)


def test_a_read_only_database_stops_a_run_and_a_sync_before_anything_is_written(demo_db, tmp_path):
    """default_transaction_read_only (a role or database made read-only, as on a standby):
    one line saying so before the races table is touched; it was dbt's 'cannot execute ALTER
    TABLE in a read-only transaction', naming no way out."""
    from racemap.openf1.sync import SyncRun, sync_race_data

    query(demo_db, f"alter database {demo_db.dbname} set default_transaction_read_only = on")
    expected = (
        f"{demo_db.display} is read-only for this role (default_transaction_read_only is on): "
        "racemap writes, so point it at a writable database, or have an administrator run "
        "ALTER ROLE ... SET default_transaction_read_only = off for racemap's role "
        "(nothing was changed)"
    )
    with pytest.raises(RacemapError) as stopped:
        run_pipeline(demo_db, tmp_path / "reports")
    assert str(stopped.value) == expected
    with demo_db.transaction() as conn, conn.cursor() as cur:
        cur.execute("set transaction read write")
        cur.execute(
            "create schema racemap; create table racemap.race_openf1_sessions (race_id text)"
        )
    with pytest.raises(RacemapError) as stopped:
        sync_race_data(SyncRun(demo_db, offline=True, log=lambda _line: None))
    assert str(stopped.value) == expected
    assert _key_columns(demo_db) == []
    assert query(demo_db, "select to_regnamespace('raw')") == [(None,)]


def test_a_database_not_in_utf8_stops_a_run_before_anything_is_written(tmp_path):
    """A LATIN1 database holding the demo's races: OpenF1's text (U+2019 in an official name)
    cannot be stored there; the load failed with 'unexpected UnicodeEncodeError ... report it'
    after the races table had its key columns."""
    from conftest import SCRATCH

    db = SCRATCH.create()
    try:
        # The same name and label, in LATIN1 (as a database made with another encoding is).
        SCRATCH.execute(
            f"drop database {db.dbname}",
            f"create database {db.dbname} template template0 encoding 'LATIN1'"
            " lc_collate 'C' lc_ctype 'C'",
            SCRATCH._label("database", db.dbname),
        )
        query(
            db,
            "create table public.races (id text primary key, year integer, round integer,"
            " circuit_id text, name text, date date, time time);"
            " insert into public.races values"
            " ('1125', 2024, 5, 'shanghai', 'Grand Prix de Chine', '2024-04-21', '07:00')",
        )
        with pytest.raises(RacemapError) as stopped:
            run_pipeline(db, tmp_path / "reports")
        assert str(stopped.value) == (
            f"{db.display} has the encoding LATIN1: racemap stores OpenF1's text, which needs "
            "UTF8; use a UTF8 database (CREATE DATABASE ... ENCODING 'UTF8' TEMPLATE "
            "template0, the application's data restored into it) (nothing was changed)"
        )
        assert _key_columns(db) == []
        assert query(db, "select to_regnamespace('raw')") == [(None,)]
    finally:
        SCRATCH.drop(db)


def test_a_restore_on_a_read_only_database_is_one_line(applied_db):
    """racemap restore where nothing can be written: it was 'unexpected ReadOnlySqlTransaction:
    cannot execute CREATE TABLE AS in a read-only transaction ... report it'."""
    from racemap.mapping.apply import restore_last_apply
    from racemap.settings import RacesTable

    query(applied_db, f"alter database {applied_db.dbname} set default_transaction_read_only = on")
    with pytest.raises(RacemapError) as stopped:
        restore_last_apply(applied_db, "t-read-only", RacesTable.from_vars(None))
    assert str(stopped.value).startswith(
        f"{applied_db.display} is read-only for this role (default_transaction_read_only is on)"
    )


def test_a_standby_in_recovery_is_named_as_such():
    """A hot standby (pg_is_in_recovery()): the same stop as a read-only role, saying to point
    racemap at the primary. A stub connection stands for the standby this suite has not."""
    from racemap import runtime

    class Cursor:
        def __enter__(self):
            return self

        def __exit__(self, *_exc):
            return False

        def execute(self, statement, params=None):
            assert "pg_is_in_recovery()" in statement

        def fetchone(self):
            return (True, "on")

    class Standby:
        def cursor(self):
            return Cursor()

    with pytest.raises(RacemapError) as stopped:
        runtime.require_writable(Standby(), "postgresql://app@replica:5432/app")
    assert str(stopped.value) == (
        "postgresql://app@replica:5432/app is a read-only standby (in recovery): racemap writes, "
        "so point it at the primary (nothing was changed)"
    )
