"""Throw-away databases on a real server, shared by the tests and the benchmarks.

``Scratch`` creates databases under one prefix on a server (empty, or a file copy of a template
database) and drops them. Each database and role it makes is labelled with the host and the
process it is made for (a comment), so that ``drop_orphans`` can drop what a killed test session
or benchmark left behind, and nothing of a process still running.

``scratch_server`` is a server to create them on: the URL given, or a temporary embedded
PostgreSQL (pgserver) stopped and deleted at the end; the user's own embedded database
(``.racemap/pgdata``) is never started or touched.
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from psycopg2 import sql

from racemap.db import Database, parse_database_url, start_embedded

TERMINATE = "select pg_terminate_backend(pid) from pg_stat_activity"


@contextmanager
def scratch_server(database_url: str | None = None) -> Iterator[Database]:
    """The server to create scratch databases on: the URL's, else a temporary embedded one."""
    if database_url:
        yield parse_database_url(database_url)
        return
    import pgserver

    with tempfile.TemporaryDirectory(prefix="racemap-scratch-pgdata-") as tmp:
        pgdata = Path(tmp) / "pgdata"
        server = start_embedded(pgdata)
        try:
            # Seen as a plain server from here on: child processes reach it by its socket URL.
            yield parse_database_url(server.url)
        finally:
            # The same handle start_embedded got: the last one in this process, so it stops.
            pgserver.get_server(pgdata).cleanup()


# The comment on a scratch database or role: the host and the process it was made for.
OWNER = "racemap scratch of {host} pid {pid}"


def this_host() -> str:
    """The host, and on Linux its process-id namespace (``vm/4026531836``): a pid names a
    process only there (a container sharing the server and the host name has its own)."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return socket.gethostname()
    return f"{socket.gethostname()}/{''.join(filter(str.isdigit, namespace))}"


_OWNER = re.compile(r"racemap scratch of (?P<host>\S+) pid (?P<pid>\d+)")
# Scratch databases and roles on the server, with their comments (the owner).
_LABELLED = """
select 'database', datname, shobj_description(oid, 'pg_database') from pg_database
union all
select 'role', rolname, shobj_description(oid, 'pg_authid') from pg_roles
"""


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return True


@dataclass
class Scratch:
    """Throw-away databases on one server, each dropped by :meth:`drop` or :meth:`drop_all`.

    ``owner_pid``: the process whose end leaves them orphans (a test session's controller,
    whose workers make them; by default this process). With ``keep`` they are unlabelled: kept
    on purpose, never dropped as orphans."""

    server: Database
    prefix: str = field(default_factory=lambda: f"racemap_scratch_{uuid.uuid4().hex[:8]}")
    keep: bool = False
    created: list[Database] = field(default_factory=list)
    owner_pid: int = field(default_factory=os.getpid)

    def _label(self, kind: str, name: str) -> sql.Composed:
        """The statement that labels database or role ``name`` with its owner."""
        owner = OWNER.format(host=this_host(), pid=self.owner_pid)
        return sql.SQL("comment on {} {} is {}").format(
            sql.SQL(kind), sql.Identifier(name), sql.Literal(owner)
        )

    def drop_orphans(self) -> list[str]:
        """Drop the labelled databases and roles of this host (:func:`this_host`) whose process
        has ended (a test session or benchmark killed before its clean-up); the names dropped. A
        role still owning something elsewhere is left."""
        import psycopg2

        dropped = []
        host = this_host()
        for kind, name, comment in self.execute(_LABELLED):
            owner = _OWNER.fullmatch(comment or "")
            if not owner or owner["host"] != host or _running(int(owner["pid"])):
                continue
            if kind == "database":
                self.drop(replace(self.server, dbname=name))
            else:
                try:
                    self.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(name)))
                except psycopg2.Error:
                    continue
            dropped.append(name)
        return dropped

    def admin(self):
        """An autocommit connection to the server's own database (CREATE/DROP DATABASE)."""
        conn = self.server.connect()
        conn.autocommit = True
        return conn

    def execute(self, *statements) -> list[tuple]:
        """Each ``(statement, params)`` or statement on an admin connection; the last's rows."""
        conn = self.admin()
        try:
            with conn.cursor() as cur:
                for statement in statements:
                    if not isinstance(statement, tuple):
                        statement = (statement, None)
                    cur.execute(*statement)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def create(self, part: str | None = None, template: Database | None = None) -> Database:
        """A new database ``<prefix>_<part>`` (a random part by default): empty, or a copy of
        ``template`` (PostgreSQL copies it file by file, in well under a second)."""
        name = f"{self.prefix}_{part or uuid.uuid4().hex[:10]}"
        create = sql.SQL("create database {}").format(sql.Identifier(name))
        statements = [create]
        if template is not None:
            # A template must have no other session: dbt and GX may keep pooled connections.
            statements = [
                (TERMINATE + " where datname = %s and pid <> pg_backend_pid()", (template.dbname,)),
                sql.SQL("{} template {}").format(create, sql.Identifier(template.dbname)),
            ]
        if not self.keep:
            statements.append(self._label("database", name))
        self.execute(*statements)
        # The server's URL options too (sslmode, ...): no scratch database gets less.
        db = replace(self.server, dbname=name, embedded=False, _server=None)
        self.created.append(db)
        return db

    def drop(self, db: Database) -> None:
        self.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(db.dbname))
        )
        self.created = [d for d in self.created if d.dbname != db.dbname]

    def drop_all(self) -> None:
        if not self.keep:
            for db in list(self.created):
                self.drop(db)

    @contextmanager
    def database(self, template: Database | None = None) -> Iterator[Database]:
        """A database for the block (a copy of ``template`` if given), dropped afterwards."""
        db = self.create(template=template)
        try:
            yield db
        finally:
            self.drop(db)

    @contextmanager
    def role(self, *databases: Database, password: str | None = None) -> Iterator[str]:
        """A login role of its own (no privilege granted; ``password``, if given) for the block;
        afterwards whatever it owns in ``databases`` is dropped, then the role."""
        name = f"racemap_role_{uuid.uuid4().hex[:8]}"
        role = sql.Identifier(name)
        create = sql.SQL("create role {} login").format(role)
        if password is not None:
            create = sql.SQL("{} password {}").format(create, sql.Literal(password))
        self.execute(create, self._label("role", name))
        try:
            yield name
        finally:
            self.execute((TERMINATE + " where usename = %s", (name,)))
            for db in databases:
                with db.transaction() as owned, owned.cursor() as cur:
                    cur.execute(sql.SQL("drop owned by {}").format(role))
            self.execute(sql.SQL("drop role if exists {}").format(role))

    def server_version(self) -> str:
        return self.execute("show server_version")[0][0]
