"""What makes a run safe to schedule: one run per database at a time (a PostgreSQL advisory
lock), local state kept per database (dbt's target and logs, the Great Expectations context),
and the checks a least-privileged role needs before it starts (the races table's key columns
exist, the grants are there).
"""

from __future__ import annotations

import hashlib
import re
import socket
import time
from contextlib import contextmanager
from pathlib import Path

from racemap.db import quote_ident
from racemap.errors import RacemapError
from racemap.settings import RacesTable, load_environment, tools_environment

# The advisory lock of `racemap run` (and `racemap validate`): two int4 keys, "rcmp" and 1.
# https://www.postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS
LOCK_KEYS = (0x72636D70, 1)
DEFAULT_LOCK_TIMEOUT = 600.0
KEY_COLUMNS = ("openf1_meeting_key", "openf1_session_key")
# racemap's own schemas (dbt's and the loader's): a routine run creates the missing ones.
OWN_SCHEMAS = (
    "raw",
    "racemap",
    "racemap_staging",
    "racemap_intermediate",
    "racemap_seeds",
    "racemap_snapshots",
    "racemap_tests",
)


class LockHeld(RacemapError):
    """Another racemap held the database's run lock for the whole wait: its reports and its
    records are its own, and this command touches neither."""


def state_dir(db, root: Path | None = None) -> Path:
    """This database's own directory under ``root`` (default: RACEMAP_STATE_DIR, else
    .racemap/state): readable name plus a hash of host, port and name."""
    root = root or load_environment().racemap_state_dir
    where = f"{db.host}:{db.port}/{db.dbname}"
    digest = hashlib.sha256(where.encode()).hexdigest()[:10]
    label = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{db.dbname}")[:40]
    return Path(root) / f"{label}-{digest}"


@contextmanager
def database_state(db, root: Path | None = None):
    """This database's local state for the block, with the environment of the tools that read
    only theirs (its libpq variables, dbt's target and logs there: settings.tools_environment);
    yields the directory, whose ``gx-root`` the checkpoints are given."""
    base = state_dir(db, root)
    for name in ("target", "logs", "gx-root"):
        (base / name).mkdir(parents=True, exist_ok=True)
    with tools_environment(db, base):
        yield base


def lock_holder(conn) -> tuple[str, str] | None:
    """The racemap holding this database's run lock now, as :func:`_holder` names it, or None
    when no one holds it (``racemap status``, which never takes the lock, says who is busy)."""
    with conn.cursor() as cur:
        return _holder(cur, None)


def _holder(cur, absent=("run", "another racemap run")):
    """The command holding the lock (``run``, ``sync``, ``validate``) and a line naming it;
    ``absent`` when no one holds it (it was just given up)."""
    cur.execute(
        "select a.application_name, a.backend_start, a.pid from pg_locks l"
        " join pg_stat_activity a on a.pid = l.pid"
        " where l.locktype = 'advisory' and l.granted and l.classid = %s and l.objid = %s"
        " and l.objsubid = 2 and l.database = (select oid from pg_database"
        "   where datname = current_database())",
        LOCK_KEYS,
    )
    row = cur.fetchone()
    if row is None:
        return absent
    name, started, pid = row
    words = (name or "").split()
    if len(words) >= 3 and words[0] == "racemap":
        host = words[3] if len(words) > 3 else "?"
        return words[1], (
            f"{words[1]} {words[2]} on {host}, started {started:%Y-%m-%d %H:%M:%S %Z}"
        )
    return "run", f"{name or 'a session'} (pid {pid}), started {started:%Y-%m-%d %H:%M:%S %Z}"


@contextmanager
def run_lock(
    db,
    run_id: str,
    timeout: float = DEFAULT_LOCK_TIMEOUT,
    log=print,
    sleep=time.sleep,
    command: str = "run",
):
    """Hold the run lock of ``db`` for the block, on a connection of its own.

    A second run (or sync, or validate: ``command``, named to whoever waits) waits up to
    ``timeout`` seconds, then fails with one line naming the command that holds the lock. The
    lock goes with the connection: a killed run never leaves it behind.
    """
    conn = db.connect()
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            label = f"racemap {command} {run_id} {socket.gethostname()}"[:63]
            cur.execute("select set_config('application_name', %s, false)", (label,))
            deadline = time.monotonic() + max(0.0, timeout)
            waiting = False
            while True:
                cur.execute("select pg_try_advisory_lock(%s, %s)", LOCK_KEYS)
                if cur.fetchone()[0]:
                    break
                holding, holder = _holder(cur)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise LockHeld(
                        f"another racemap {holding} holds {db.display}: {holder}; waited "
                        f"{timeout:g} s (--lock-timeout): try again when it has finished"
                    )
                if not waiting:
                    log(f"waiting for {holder} (up to {timeout:g} s)")
                    waiting = True
                sleep(min(1.0, left))
        yield
    finally:
        conn.close()  # releases the session-level lock


def require_races_table(conn, races: RacesTable) -> None:
    """One clear line when the races table the vars name is not in this database."""
    from racemap.db import relation_exists

    if not relation_exists(conn, races.schema, races.table):
        raise RacemapError(
            f"table {races.name} does not exist in this database: name the races table with "
            "--var races_schema=... --var races_table=..., or check DATABASE_URL"
        )
    grant = schema_usage_missing(conn, races)
    if grant:
        raise RacemapError(f"this role cannot read {races.name}: {grant}")


def schema_usage_missing(conn, races: RacesTable) -> str | None:
    """The grant of USAGE on the races table's schema when this role lacks it, else None.

    Without it no name in the schema resolves (the catalog queries naming the table by
    ``::regclass`` failed with an unexpected InsufficientPrivilege): asked first, before
    anything else reads the table.
    """
    with conn.cursor() as cur:
        cur.execute(
            "select current_user, has_schema_privilege(oid, 'USAGE') from pg_namespace"
            " where nspname = %s",
            (races.schema,),
        )
        row = cur.fetchone()
    if row is None or row[1]:
        return None
    schema = races.schema
    if not re.fullmatch(r"[a-z_][a-z0-9_$]*", schema):
        schema = quote_ident(schema)  # as the statement must name it: App, "GP's"
    return f"grant usage on schema {schema} to {row[0]}"


def require_utf8(conn, display: str) -> None:
    """One line, before anything is written, when the database's encoding is not UTF8:
    OpenF1's text is any Unicode (a meeting's official name holds U+2019), which LATIN1 or
    SQL_ASCII cannot hold (the load failed with an 'unexpected UnicodeEncodeError', after the
    races table had its key columns)."""
    with conn.cursor() as cur:
        cur.execute(
            "select pg_encoding_to_char(encoding) from pg_database"
            " where datname = current_database()"
        )
        encoding = cur.fetchone()[0]
    if encoding != "UTF8":
        raise RacemapError(
            f"{display} has the encoding {encoding}: racemap stores OpenF1's text, which "
            "needs UTF8; use a UTF8 database (CREATE DATABASE ... ENCODING 'UTF8' TEMPLATE "
            "template0, the application's data restored into it) (nothing was changed)"
        )


def require_writable(conn, display: str) -> None:
    """One line, before anything is written, when this connection's transactions cannot write:
    a standby in recovery, or ``default_transaction_read_only`` on for the database or the role
    (every write of a run or a sync failed, the first one being dbt's ALTER of the races table
    or an insert of the load)."""
    with conn.cursor() as cur:
        cur.execute("select pg_is_in_recovery(), current_setting('transaction_read_only')")
        standby, read_only = cur.fetchone()
    if standby:
        raise RacemapError(
            f"{display} is a read-only standby (in recovery): racemap writes, so point it at "
            "the primary (nothing was changed)"
        )
    if read_only == "on":
        raise RacemapError(
            f"{display} is read-only for this role (default_transaction_read_only is on): "
            "racemap writes, so point it at a writable database, or have an administrator run "
            "ALTER ROLE ... SET default_transaction_read_only = off for racemap's role "
            "(nothing was changed)"
        )


def key_columns_missing(conn, races: RacesTable) -> list[str]:
    """Which of the two key columns (each with a one-column unique constraint) are missing."""
    with conn.cursor() as cur:
        cur.execute(
            "select a.attname, exists ("
            "   select 1 from pg_constraint c where c.conrelid = a.attrelid and c.contype = 'u'"
            "   and c.conkey = array[a.attnum]::int2[])"
            " from pg_attribute a where a.attrelid = %s::regclass and a.attname = any(%s)"
            " and not a.attisdropped",
            (f"{quote_ident(races.schema)}.{quote_ident(races.table)}", list(KEY_COLUMNS)),
        )
        present = {name for name, unique in cur.fetchall() if unique}
    return [c for c in KEY_COLUMNS if c not in present]


def may_migrate(conn, races: RacesTable) -> bool:
    """The connected role owns the races table (or is a member of its owner)."""
    with conn.cursor() as cur:
        cur.execute(
            "select pg_has_role(c.relowner, 'USAGE') from pg_class c where c.oid = %s::regclass",
            (f"{quote_ident(races.schema)}.{quote_ident(races.table)}",),
        )
        row = cur.fetchone()
    return bool(row and row[0])


def missing_grants(conn, races: RacesTable, dry_run: bool) -> list[str]:
    """The grants a routine run lacks, each as the statement that would give it."""
    relation = f"{quote_ident(races.schema)}.{quote_ident(races.table)}"
    with conn.cursor() as cur:
        cur.execute("select current_user, current_database()")
        role, database = cur.fetchone()
        wanted = []
        cur.execute("select has_table_privilege(%s, 'SELECT')", (relation,))
        if not cur.fetchone()[0]:
            wanted.append(f"grant select on {races.name} to {role}")
        if not dry_run:
            lacking = []
            for column in KEY_COLUMNS:
                cur.execute("select has_column_privilege(%s, %s, 'UPDATE')", (relation, column))
                if not cur.fetchone()[0]:
                    lacking.append(column)
            if lacking:
                wanted.append(f"grant update ({', '.join(lacking)}) on {races.name} to {role}")
        # Row-level security that hides every row from this role (no policy for it): the run
        # saw no race at all, 'ok', and every race 'race_removed'.
        cur.execute(
            "select c.relrowsecurity and not (r.rolsuper or r.rolbypassrls)"
            " and (c.relforcerowsecurity or not pg_has_role(c.relowner, 'USAGE'))"
            " and not exists (select 1 from pg_policy p where p.polrelid = c.oid"
            "   and p.polcmd in ('r', '*') and (0 = any(p.polroles) or exists ("
            "     select 1 from unnest(p.polroles) as x(oid) where pg_has_role(x.oid, 'USAGE'))))"
            " from pg_class c, pg_roles r where c.oid = %s::regclass and r.rolname = current_user",
            (relation,),
        )
        if cur.fetchone()[0]:
            wanted.append(
                f"create policy racemap on {races.name} to {role} using (true) (row-level "
                f"security hides every row of {races.name} from {role}: racemap would see no "
                "race; or alter role ... bypassrls)"
            )
        cur.execute(
            "select s.name, n.oid is not null,"
            " n.oid is not null and has_schema_privilege(n.oid, 'CREATE')"
            " and has_schema_privilege(n.oid, 'USAGE')"
            " from unnest(%s::text[]) as s(name) left join pg_namespace n on n.nspname = s.name",
            (list(OWN_SCHEMAS),),
        )
        schemas = cur.fetchall()
        cur.execute("select has_database_privilege(current_database(), 'CREATE')")
        may_create = cur.fetchone()[0]
        # racemap's objects another role owns: its migrations ALTER them and dbt replaces them,
        # which only their owner may do, whatever is granted.
        cur.execute(
            "select n.nspname, array_agg(distinct o.owner::regrole::text order by"
            " o.owner::regrole::text) from pg_namespace n join ("
            "   select relnamespace, relowner from pg_class where relkind in"
            "   ('r', 'p', 'v', 'm', 'S', 'f')"
            "   union all select pronamespace, proowner from pg_proc) as o(nsp, owner)"
            " on o.nsp = n.oid where n.nspname = any(%s) and not pg_has_role(o.owner, 'USAGE')"
            " group by n.nspname order by n.nspname",
            (list(OWN_SCHEMAS),),
        )
        others = dict(cur.fetchall())
    if not may_create and any(not exists for _name, exists, _ok in schemas):
        wanted.append(f"grant create on database {database} to {role}")
    for name, exists, usable in schemas:
        if exists and not usable and name not in others:
            wanted.append(f"grant usage, create on schema {name} to {role}")
    if others:
        owners = sorted({owner for names in others.values() for owner in names})
        wanted.append(
            f"racemap's schemas {', '.join(others)} hold objects of {', '.join(owners)}, not "
            f"of {role}: racemap upgrades and rebuilds them, which only their owner may, so "
            f"run racemap as {owners[0]}, or make {role} the owner of those schemas and of "
            f"everything in them (ALTER SCHEMA ... OWNER TO {role}, ALTER TABLE ... OWNER TO "
            f"{role}, ...)"
        )
    return wanted
