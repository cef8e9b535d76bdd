"""racemap's own tables, created and evolved by alembic migrations (``versions/``).

The tables: ``raw.openf1_meetings``, ``raw.openf1_sessions``, ``raw.openf1_session_results``,
``raw.openf1_starting_grid``, ``raw.openf1_loads``, ``raw.openf1_rejects``,
``racemap.mapping_runs``, ``racemap.mapping_history`` and, for monitoring, ``racemap.runs``,
``racemap.run_race_states``, ``racemap.run_openf1_states`` and ``racemap.run_changes``. The
application's races table is not ours: its two key columns stay the one-time ``racemap
migrate`` (dbt's ``migrate`` macro).

:func:`upgrade` runs alembic programmatically: an ``alembic.config.Config`` built here (no
alembic.ini), the scripts found in this package, the version table in racemap's own schema
(``racemap.alembic_version``). Revision 0001 is the schema racemap created with
``create table if not exists`` before alembic, written so that it runs on an empty database and
on one made by that release alike; later revisions change it with ``alter table``. Migrations
are forward-only: nothing here drops loaded data.

One upgrade at a time per database: a transaction-level advisory lock around it
(https://www.postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS). A database
already at the head revision is only read, so a role without CREATE can run racemap once an
owner has upgraded it.
"""

from __future__ import annotations

from pathlib import Path

import psycopg2

from racemap.errors import RacemapError, first_line

SCHEMA = "racemap"  # the version table's schema (racemap.alembic_version)
VERSION_TABLE = "alembic_version"
SCRIPT_LOCATION = Path(__file__).resolve().parent
# pg_advisory_xact_lock key of the upgrade: "racemig" in ASCII, any other lock of racemap differs.
LOCK_KEY = 0x72_61_63_65_6D_69_67
LOCK_TIMEOUT = "120s"  # waiting for another upgrade, or for tables an open transaction holds


def config():
    """The alembic Config of racemap's migrations (no alembic.ini)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPT_LOCATION))
    cfg.set_main_option("version_table_schema", SCHEMA)
    return cfg


def scripts() -> list[str]:
    """Every script's revision id, oldest first, from the file names alone (no alembic import):
    every script in ``versions/`` is named after its revision id, numbered in order
    (tests/test_migrations.py checks that the last is alembic's :func:`head`)."""
    return sorted(path.stem for path in (SCRIPT_LOCATION / "versions").glob("[0-9]*.py"))


def newest_script() -> str:
    """The newest script's revision id (:func:`scripts`)."""
    return scripts()[-1]


# The tables each revision creates (every script says ``create table if not exists``, so one
# of the application's by that name would be taken for racemap's, silently): an upgrade refuses
# them when they are there before it. tests/test_migrations.py checks this against what each
# script really creates; a new script that creates a table adds its row here.
CREATES = {
    "0001_initial": (
        "raw.openf1_meetings",
        "raw.openf1_sessions",
        "raw.openf1_loads",
        "raw.openf1_rejects",
        "racemap.mapping_runs",
        "racemap.mapping_history",
    ),
    "0002_race_weekend": ("raw.openf1_session_results", "raw.openf1_starting_grid"),
    "0004_monitoring": (
        "racemap.runs",
        "racemap.run_race_states",
        "racemap.run_openf1_states",
        "racemap.run_changes",
    ),
    "0005_race_data": tuple(
        f"raw.openf1_{name}"
        for name in (
            "drivers",
            "laps",
            "stints",
            "pit",
            "position",
            "weather",
            "race_control",
            "intervals",
            "overtakes",
            "car_data",
            "location",
        )
    ),
    "0006_sync_runs": ("racemap.sync_runs",),
}


def _initial_tables() -> dict[str, set[str]]:
    """The tables of revision 0001 (those a release before alembic made) and their columns,
    read from its DDL."""
    import importlib
    import re

    initial = importlib.import_module(f"{__name__}.versions.0001_initial")
    found = {}
    for name, body in re.findall(
        r"create table if not exists (\S+) \((.*?)\n\);",
        initial.RAW_DDL + initial.HISTORY_DDL,
        re.S,
    ):
        found[name] = set(re.findall(r"^    (\w+) ", body, re.M))
    return found


def foreign_objects(conn) -> list[str]:
    """The relations in racemap's own schemas (raw, racemap) under the name of a table its
    migrations create (:data:`CREATES`) that racemap did not make: the application's, which
    ``create table if not exists`` would take for racemap's own (and write into, or fail on).
    On a database no racemap has migrated yet (no version table), every such relation is
    foreign, but for a database a release before alembic made (``raw.openf1_loads`` as that
    release made it): there revision 0001's tables are racemap's when they have the columns
    that release gave them. On a database racemap migrated, the tables its next scripts create
    must not be there yet. What dbt makes (models, seeds, the lookup functions) is not looked
    at: a ``dbt build`` before the first run made racemap's own, which the run builds again."""
    at = current(conn)
    if at is not None:
        return _pending_tables_there(conn, at)
    found = _relations_named(conn, [name for names in CREATES.values() for name in names])
    initial = _initial_tables()
    ours = {
        name
        for name, kind, columns in found
        if kind == "table" and name in initial and initial[name] <= set(columns)
    }
    if "raw.openf1_loads" not in ours:  # no racemap made these: every one is foreign
        ours = set()
    return [f"{name} ({kind})" for name, kind, _ in found if name not in ours]


def _pending_tables_there(conn, at: str) -> list[str]:
    """The tables the scripts after revision ``at`` create that are there already: the
    application's (or anyone's) made since racemap's last upgrade."""
    known = scripts()
    if at not in known:
        return []  # a newer racemap's database: refused as such
    pending = [name for rev in known[known.index(at) + 1 :] for name in CREATES.get(rev, ())]
    return [f"{name} ({kind})" for name, kind, _ in _relations_named(conn, pending)]


def _relations_named(conn, names: list[str]) -> list[tuple[str, str, list[str]]]:
    """The relations there of ``names`` (``schema.table``): (name, kind, column names)."""
    if not names:
        return []
    with conn.cursor() as cur:
        cur.execute(
            "select n.nspname || '.' || c.relname, case c.relkind when 'v' then 'view'"
            "  when 'm' then 'materialized view' when 'f' then 'foreign table' else 'table' end,"
            "  array(select a.attname::text from pg_attribute a where a.attrelid = c.oid"
            "   and a.attnum > 0 and not a.attisdropped)"
            " from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname || '.' || c.relname = any(%s) and c.relkind in"
            " ('r', 'p', 'v', 'm', 'f') order by 1",
            (names,),
        )
        return cur.fetchall()


def check_database(conn, dbname: str | None) -> None:
    """Before a run changes anything (the races table's key columns included): one line when
    this database's racemap tables are a newer release's, or racemap's schemas hold the
    application's objects (:func:`foreign_objects`). Only reads."""
    with conn.cursor() as cur:  # the catalog only: no privilege on racemap's schema needed
        cur.execute(
            "select has_schema_privilege(n.oid, 'USAGE') and has_table_privilege(c.oid, 'SELECT')"
            " from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = %s and c.relname = %s",
            (SCHEMA, VERSION_TABLE),
        )
        row = cur.fetchone()
    if row is not None and not row[0]:
        return  # migrated by racemap, unreadable to this role: the grants check names the grant
    _refuse_unknown(current(conn), dbname)
    _refuse_foreign(conn, dbname)


def _refuse_foreign(conn, dbname: str | None) -> None:
    foreign = foreign_objects(conn)
    if foreign:
        more = f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
        raise RacemapError(
            f"racemap's schemas in database {dbname} hold objects racemap did not make: "
            f"{', '.join(foreign[:5])}{more}: racemap keeps its own tables, views and "
            "functions in the schemas raw, racemap and racemap_* and would take these for its "
            "own; move them to another schema (ALTER ... SET SCHEMA) or point racemap at "
            "another database (nothing was changed)"
        )


def _refuse_unknown(at: str | None, dbname: str | None) -> None:
    """A database a newer racemap upgraded (its revision is none of these scripts) is left as
    it is, with one line: this release would not know its tables (alembic said only "Can't
    locate revision", and the run called it unexpected)."""
    if at is not None and at not in scripts():
        raise RacemapError(
            f"database {dbname} was upgraded by a newer racemap (its tables are at revision "
            f"{at}; this racemap knows up to {newest_script()}): run that newer racemap "
            "release (or a later one) on it; this one changes nothing there"
        )


def head() -> str:
    """The newest revision id of the scripts in ``versions/``."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(config()).get_current_head()


def _connector(target):
    """A function opening a new connection to ``target``: a racemap Database, or a psycopg2
    connection whose parameters (libpq options and password included) are reused."""
    if isinstance(target, psycopg2.extensions.connection):
        params = {k: v for k, v in target.get_dsn_parameters().items() if v != ""}
        password = target.info.password

        def connect():
            return psycopg2.connect(**params, password=password or None)

        return connect, params.get("dbname"), params.get("user")
    return target.connect, target.dbname, target.user


def current(conn) -> str | None:
    """The revision a database is at (a psycopg2 connection), or None before alembic."""
    with conn.cursor() as cur:
        cur.execute("select to_regclass(%s)", (f"{SCHEMA}.{VERSION_TABLE}",))
        if cur.fetchone()[0] is None:
            return None
        cur.execute(f"select version_num from {SCHEMA}.{VERSION_TABLE}")
        row = cur.fetchone()
    return row[0] if row else None


def upgrade(target, revision: str = "head") -> str:
    """Bring racemap's tables to ``revision`` (default the newest); returns the revision.

    ``target`` is a :class:`racemap.db.Database` or an open psycopg2 connection. The upgrade runs
    on a connection of its own and commits before this returns, so call it before a transaction
    touches racemap's tables. Safe to run again and from two processes at once.

    A database at the newest script is only read, on a plain connection: the routine case costs
    no import of alembic and SQLAlchemy (half a second, most of a warm run's ``migrate``). A
    version read while another upgrade runs is the one before it (the upgrade commits its
    version with its tables), so that case takes the locked path below and waits for it.
    """
    connect, dbname, user = _connector(target)
    if revision == "head":
        newest = newest_script()
        try:
            conn = connect()
            try:
                at = current(conn)
                if at == newest:
                    return newest
                _refuse_unknown(at, dbname)
            finally:
                conn.close()
        except psycopg2.Error as exc:
            raise RacemapError(_explain(exc, dbname, user)) from None

    import sqlalchemy as sa
    from alembic import command
    from sqlalchemy.pool import NullPool

    engine = sa.create_engine("postgresql+psycopg2://", creator=connect, poolclass=NullPool)
    cfg = config()
    wanted = head() if revision == "head" else revision
    try:
        with engine.connect() as connection, connection.begin():
            raw = connection.connection.dbapi_connection
            with raw.cursor() as cur:
                cur.execute(f"set local lock_timeout = '{LOCK_TIMEOUT}'")
                cur.execute("select pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            at = current(raw)
            if at == wanted:
                return at  # read only: nothing to create, no privilege needed
            _refuse_unknown(at, dbname)
            _refuse_foreign(raw, dbname)
            with raw.cursor() as cur:
                cur.execute("select to_regnamespace(%s)", (SCHEMA,))
                if cur.fetchone()[0] is None:
                    cur.execute(f"create schema {SCHEMA}")
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, revision)
        return wanted
    except sa.exc.DBAPIError as exc:
        raise RacemapError(_explain(exc.orig, dbname, user)) from None
    except psycopg2.Error as exc:
        raise RacemapError(_explain(exc, dbname, user)) from None
    finally:
        engine.dispose()


def _explain(error, dbname: str | None, user: str | None) -> str:
    """One line for a failed upgrade, naming the grant that is missing when one is."""
    text = first_line(error)
    code = getattr(error, "pgcode", None)
    who = user or "the role"
    if code == "42501":  # insufficient_privilege
        if "database" in text:
            grant = f"GRANT CREATE ON DATABASE {dbname} TO {who}"
        elif "schema" in text:
            schema = text.rsplit(" ", 1)[-1]
            grant = f"GRANT USAGE, CREATE ON SCHEMA {schema} TO {who}"
        else:
            grant = "run it once as the owner of racemap's tables"
        return (
            f"cannot create or upgrade racemap's tables in database {dbname} ({text}): "
            f"{grant}, or have their owner run racemap once"
        )
    if code == "55P03":  # lock_not_available
        return (
            f"racemap's tables in database {dbname} stayed locked for {LOCK_TIMEOUT} during "
            "their upgrade (another racemap upgrading them, or an open transaction holding "
            "them): try again"
        )
    return f"upgrading racemap's tables in database {dbname} failed: {text}"


def run_sql(script: str) -> None:
    """Execute a SQL script in a migration, as psql would: several statements, ``%`` and ``:``
    taken literally (no bind parameters)."""
    from alembic import op

    with op.get_bind().connection.dbapi_connection.cursor() as cur:
        cur.execute(script)
