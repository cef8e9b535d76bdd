"""Database connection: a PostgreSQL URL, or the embedded pgserver database.

A :class:`Database` knows how to connect (psycopg2), what libpq variables dbt needs, and how to
show itself without its password. Nothing here prints or stores a password.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

import psycopg2
import psycopg2.extensions

from .errors import RacemapError
from .paths import EMBEDDED_PGDATA

_SCHEMES = {"postgresql", "postgres", "postgresql+psycopg2"}


@dataclass
class Database:
    """Connection parameters of one PostgreSQL database."""

    host: str
    port: int
    user: str
    dbname: str
    password: str | None = field(default=None, repr=False)
    embedded: bool = False
    _server: object = field(default=None, repr=False, compare=False)

    # -- ways to reach it -------------------------------------------------------------------
    def connect(self, **kwargs):
        try:
            return psycopg2.connect(
                host=self.host,
                port=self.port,
                user=self.user,
                password=self.password or None,
                dbname=self.dbname,
                connect_timeout=10,
                application_name="racemap",
                **kwargs,
            )
        except psycopg2.OperationalError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RacemapError(f"cannot connect to {self.display}: {first}") from None

    @contextmanager
    def transaction(self):
        """A connection whose work commits on success and rolls back on any error."""
        conn = self.connect()
        try:
            with conn:
                yield conn
        finally:
            conn.close()

    @property
    def url(self) -> str:
        """The full URL, password included: for child processes' environment only."""
        auth = quote(self.user, safe="")
        if self.password:
            auth += ":" + quote(self.password, safe="")
        if self.host.startswith("/"):
            return (
                f"postgresql://{auth}@localhost:{self.port}/{self.dbname}?host={quote(self.host)}"
            )
        return f"postgresql://{auth}@{self.host}:{self.port}/{self.dbname}"

    @property
    def sqlalchemy_url(self) -> str:
        return self.url.replace("postgresql://", "postgresql+psycopg2://", 1)

    @property
    def display(self) -> str:
        """The URL with the password masked: safe for logs and reports."""
        if self.embedded:
            return f"embedded PostgreSQL ({self.host})"
        auth = self.user + (":***" if self.password else "")
        return f"postgresql://{auth}@{self.host}:{self.port}/{self.dbname}"

    def libpq_env(self) -> dict[str, str]:
        """libpq variables (read by profiles.yml, psql and child processes)."""
        env = {
            "PGHOST": self.host,
            "PGPORT": str(self.port),
            "PGUSER": self.user,
            "PGDATABASE": self.dbname,
            "PGPASSWORD": self.password or "",
            "DBT_ENV_SECRET_PGPASSWORD": self.password or "",
            "DATABASE_URL": self.url,
        }
        return env

    def export_env(self) -> None:
        """Put the connection into this process's environment (dbt, papermill kernels, GX)."""
        os.environ.update(self.libpq_env())


def parse_database_url(url: str) -> Database:
    """Parse a PostgreSQL URL; anything else is a clear error."""
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES:
        raise RacemapError(
            f"DATABASE_URL must be a PostgreSQL URL (postgresql://user@host:port/dbname), "
            f"not a {parts.scheme or 'schemeless'} URL"
        )
    plain = url.replace(parts.scheme + "://", "postgresql://", 1)
    try:
        dsn = psycopg2.extensions.parse_dsn(plain)
    except psycopg2.ProgrammingError:
        raise RacemapError("DATABASE_URL is not a valid PostgreSQL URL") from None
    try:
        port = int(dsn.get("port") or 5432)
    except ValueError:
        raise RacemapError("DATABASE_URL has a port that is not a number") from None
    return Database(
        host=dsn.get("host") or "localhost",
        port=port,
        user=dsn.get("user") or os.environ.get("USER", "postgres"),
        dbname=dsn.get("dbname") or dsn.get("user") or "postgres",
        password=dsn.get("password"),
    )


def start_embedded(pgdata: Path = EMBEDDED_PGDATA) -> Database:
    """Start (or attach to) the embedded PostgreSQL whose data lives in ``pgdata``."""
    import pgserver  # imported here: only the embedded path needs it

    pgdata = Path(pgdata)
    pgdata.mkdir(parents=True, exist_ok=True)
    try:
        server = pgserver.get_server(pgdata, cleanup_mode="stop")
    except Exception as exc:  # pgserver raises plain exceptions with long logs
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RacemapError(f"cannot start the embedded PostgreSQL in {pgdata}: {first}") from None
    return Database(
        host=str(pgdata),
        port=5432,
        user="postgres",
        dbname="postgres",
        embedded=True,
        _server=server,
    )


def resolve_database(url: str | None = None, pgdata: Path | None = None) -> Database:
    """``--database-url``, else ``DATABASE_URL``, else the embedded database."""
    url = url or os.environ.get("DATABASE_URL") or None
    if url:
        return parse_database_url(url)
    return start_embedded(pgdata or EMBEDDED_PGDATA)


def query_dicts(conn, query: str, params=()) -> list[dict]:
    """Rows of a query as dicts keyed by column name."""
    with conn.cursor() as cur:
        cur.execute(query, params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def relation_exists(conn, schema: str, table: str) -> bool:
    with conn.cursor() as cur:
        cur.execute(
            "select 1 from information_schema.tables where table_schema = %s and table_name = %s",
            (schema, table),
        )
        return cur.fetchone() is not None
