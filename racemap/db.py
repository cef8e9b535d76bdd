"""Database connection: a PostgreSQL URL, or the embedded pgserver database.

A :class:`Database` knows how to connect (psycopg2), which libpq variables its child processes
and dbt need, and how to show itself without its password. Nothing here prints or stores a
password.

Every libpq option of the URL (``sslmode``, ``sslrootcert``, ``options``, ``application_name``,
``connect_timeout``, ...) reaches every component: psycopg2 connections take them as keywords,
Great Expectations (SQLAlchemy) and the notebook kernels get them in the URL's query, and
:meth:`Database.export_env` puts each into the libpq environment variable every libpq client
reads (https://www.postgresql.org/docs/current/libpq-envars.html): dbt's connections get them
there, ``profiles.yml`` reads the few that dbt-postgres would otherwise set itself.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

import psycopg2
import psycopg2.extensions

from racemap.errors import RacemapError, UsageError, blank_secrets, first_line
from racemap.paths import EMBEDDED_PGDATA

_SCHEMES = {"postgresql", "postgres", "postgresql+psycopg2"}

# libpq's connection keywords that have an environment variable, and that variable
# (https://www.postgresql.org/docs/current/libpq-envars.html).
KEYWORD_ENV = {
    "host": "PGHOST",
    "hostaddr": "PGHOSTADDR",
    "port": "PGPORT",
    "dbname": "PGDATABASE",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "passfile": "PGPASSFILE",
    "require_auth": "PGREQUIREAUTH",
    "channel_binding": "PGCHANNELBINDING",
    "service": "PGSERVICE",
    "options": "PGOPTIONS",
    "application_name": "PGAPPNAME",
    "sslmode": "PGSSLMODE",
    "requiressl": "PGREQUIRESSL",
    "sslnegotiation": "PGSSLNEGOTIATION",
    "sslcompression": "PGSSLCOMPRESSION",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcertmode": "PGSSLCERTMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcrl": "PGSSLCRL",
    "sslcrldir": "PGSSLCRLDIR",
    "sslsni": "PGSSLSNI",
    "requirepeer": "PGREQUIREPEER",
    "ssl_min_protocol_version": "PGSSLMINPROTOCOLVERSION",
    "ssl_max_protocol_version": "PGSSLMAXPROTOCOLVERSION",
    "gssencmode": "PGGSSENCMODE",
    "krbsrvname": "PGKRBSRVNAME",
    "gsslib": "PGGSSLIB",
    "gssdelegation": "PGGSSDELEGATION",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "client_encoding": "PGCLIENTENCODING",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
    "load_balance_hosts": "PGLOADBALANCEHOSTS",
}
# Variables of the same page that are no connection keyword but still steer a libpq session
# (where the service file is, session defaults sent at start-up).
SESSION_ENV = ("PGSERVICEFILE", "PGSYSCONFDIR", "PGDATESTYLE", "PGTZ", "PGGEQO")
LIBPQ_VARIABLES = (*KEYWORD_ENV.values(), *SESSION_ENV)
# libpq has no variable for keepalives_idle, but dbt-postgres takes it in the profile
# (PostgresCredentials in dbt/adapters/postgres/connections.py): profiles.yml reads this one.
PROFILE_ONLY = {"keepalives_idle": "RACEMAP_PGKEEPALIVES_IDLE"}
# dbt masks the values of DBT_ENV_SECRET_* variables in its logs and artifacts (dbt_common's
# env_secrets()): the password raw, and URL-encoded as it appears in DATABASE_URL.
SECRET_PASSWORD = "DBT_ENV_SECRET_PGPASSWORD"
SECRET_PASSWORD_ENCODED = "DBT_ENV_SECRET_PGPASSWORD_URLENCODED"
MANAGED = (*LIBPQ_VARIABLES, *PROFILE_ONLY.values(), SECRET_PASSWORD, SECRET_PASSWORD_ENCODED)
_CORE = ("host", "port", "user", "dbname", "password")
DEFAULT_CONNECT_TIMEOUT = 10


@dataclass
class Database:
    """Connection parameters of one PostgreSQL database.

    ``options`` holds the URL's other libpq keywords (``sslmode``, ``options``, ...) as given.
    """

    host: str
    port: int
    user: str
    dbname: str
    password: str | None = field(default=None, repr=False)
    embedded: bool = False
    options: dict[str, str] = field(default_factory=dict)
    _server: object = field(default=None, repr=False, compare=False)

    # -- ways to reach it -------------------------------------------------------------------
    def connect_kwargs(self) -> dict:
        """psycopg2/libpq keywords: the URL's, then racemap's defaults for what it left out."""
        kwargs = {"host": self.host, "port": self.port, "user": self.user, "dbname": self.dbname}
        if self.password:
            kwargs["password"] = self.password
        kwargs.update(self.options)
        if "connect_timeout" not in kwargs and not os.environ.get("PGCONNECT_TIMEOUT"):
            kwargs["connect_timeout"] = DEFAULT_CONNECT_TIMEOUT
        # Used only when neither the URL nor PGAPPNAME names the application.
        kwargs["fallback_application_name"] = "racemap"
        return kwargs

    def connect(self, **kwargs):
        try:
            return psycopg2.connect(**{**self.connect_kwargs(), **kwargs})
        except psycopg2.OperationalError as exc:
            raise RacemapError(connection_error(self, exc)) from None

    @contextmanager
    def transaction(self):
        """A connection whose work commits on success and rolls back on any error."""
        conn = self.connect()
        try:
            with conn:
                yield conn
        finally:
            conn.close()

    def _authority(self, password: str | None) -> str:
        auth = quote(self.user, safe="")
        if password:
            auth += ":" + password
        return auth

    def _url(self, password: str | None) -> str:
        query = dict(self.options)
        host = self.host
        if host.startswith("/"):
            # A socket directory goes in the query; the name keeps the URL acceptable to
            # SQLAlchemy and Great Expectations, which want a host name (libpq takes host=).
            query = {"host": host, **query}
            host = "localhost"
        elif ":" in host:
            host = f"[{host}]"
        url = f"postgresql://{self._authority(password)}@{host}:{self.port}/"
        url += quote(self.dbname, safe="")
        if query:
            url += "?" + urlencode(query, quote_via=quote, safe="/")
        return url

    @property
    def url(self) -> str:
        """The full URL, password and options included: for child processes' environment only."""
        return self._url(quote(self.password, safe="") if self.password else None)

    @property
    def sqlalchemy_url(self) -> str:
        return self.url.replace("postgresql://", "postgresql+psycopg2://", 1)

    @property
    def display(self) -> str:
        """The URL with the password masked: safe for logs and reports."""
        if self.embedded:
            where = getattr(self._server, "pgdata", None) or self.host
            return f"embedded PostgreSQL ({where})"
        return self._url("***" if self.password else None)

    # -- the environment of this process and its children ----------------------------------------
    def libpq_env(self, isolated: bool | None = None) -> dict[str, str]:
        """The variables racemap sets for this database (:meth:`env_changes` also clears)."""
        return {k: v for k, v in self.env_changes(isolated).items() if v is not None}

    def env_changes(self, isolated: bool | None = None) -> dict[str, str | None]:
        """The variables racemap sets (a value) or removes (``None``) for this database,

        read by libpq in dbt, Great Expectations, papermill kernels, psql; ``profiles.yml``
        reads ``PGHOST``, ``PGPORT``, ``PGUSER``, ``PGDATABASE``, the password, and the few
        options dbt would otherwise set itself. ``isolated`` (default: the embedded database)
        clears every other libpq variable of the shell; otherwise the shell's stay as libpq's
        defaults for what the URL leaves out, and the URL's options win over them.
        """
        if isolated is None:
            isolated = self.embedded
        env: dict[str, str | None] = dict.fromkeys(MANAGED)
        if not isolated:
            env.update(_shell_env())
        env.update(
            PGHOST=self.host, PGPORT=str(self.port), PGUSER=self.user, PGDATABASE=self.dbname
        )
        if self.password:
            env["PGPASSWORD"] = self.password
        for keyword, value in self.options.items():
            env[KEYWORD_ENV.get(keyword) or PROFILE_ONLY[keyword]] = value
        password = env.get("PGPASSWORD") or ""
        env[SECRET_PASSWORD] = password
        encoded = quote(password, safe="")
        env[SECRET_PASSWORD_ENCODED] = encoded if encoded != password else None
        env["DATABASE_URL"] = self.url
        return env

    def child_env(self, base: Mapping[str, str] | None = None, isolated=None) -> dict[str, str]:
        """``base`` (default: this process's environment) with :meth:`env_changes` applied."""
        env = dict(os.environ if base is None else base)
        for name, value in self.env_changes(isolated).items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    def export_env(self, isolated: bool | None = None) -> None:
        """Put the connection into this process's environment (dbt, papermill kernels, GX)."""
        for name, value in self.env_changes(isolated).items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
            _exported[name] = value


# What racemap's last export put in os.environ, and each variable's value before it did: a later
# export restores the shell's values of what the new URL leaves out, never a stale option of an
# earlier database of the same process.
_exported: dict[str, str | None] = {}
_shell: dict[str, str | None] = {}


def _shell_env() -> dict[str, str | None]:
    for name in MANAGED:
        current = os.environ.get(name)
        if name not in _exported or _exported[name] != current:
            _shell[name] = current  # set by the shell (or changed since racemap set it)
            _exported.pop(name, None)
    return {name: _shell.get(name) for name in MANAGED}


# -- one clear line when a connection fails -----------------------------------------------------
_CHECK = "check DATABASE_URL (or --database-url)"
_ENCODE = "URL-encode @ : / % in the password as %40 %3A %2F %25"
_SSL_OPTIONS = "check sslmode, sslrootcert, sslcert and sslkey in DATABASE_URL"


def server_message(text: str) -> str:
    """What the server said of a refused connection, without the prefixes libpq puts before it
    ('connection to server at "h" (addr), port N failed: ' and 'FATAL:  ')."""
    text = re.sub(r"^connection to server (at|on socket) .*? failed: ", "", text)
    return re.sub(r"^FATAL:\s+", "", text)


def connection_error(db: Database, exc: BaseException) -> str:
    """``cannot connect to <url without password>: <what happened> — <what to do>``."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    message = server_message(lines[0] if lines else type(exc).__name__)
    low = message.lower()
    where = f"{db.host}:{db.port}"
    if "password authentication failed" in low:
        text = f"wrong password for user {db.user} — check the password in DATABASE_URL ({_ENCODE})"
    elif "no password supplied" in low:
        text = "the server wants a password — put it in DATABASE_URL or PGPASSWORD"
    elif "server does not support ssl" in low:
        mode = db.options.get("sslmode") or os.environ.get("PGSSLMODE") or "require"
        text = (
            f"the server does not support SSL, but sslmode={mode} requires it — enable SSL on "
            "the server, or lower sslmode in DATABASE_URL (on a trusted network only)"
        )
    elif "connection refused" in low:
        text = f"connection refused — is the server running and accepting TCP on {where}? {_CHECK}"
    elif "no such file or directory" in low:
        text = f"no server on socket {db.host}/.s.PGSQL.{db.port} — is it running? {_CHECK}"
    elif "could not translate host name" in low:
        text = f"unknown host {db.host} — check the host name in DATABASE_URL"
    elif "timeout expired" in low:
        text = (
            f"no answer from {where} in time — check the host, the port and the firewall, or "
            "raise connect_timeout in DATABASE_URL"
        )
    elif "too many connections" in low or "connection slots are reserved" in low:
        text = (
            f"{message} — the server has no connection left for this role: close other "
            "sessions, or raise the role's CONNECTION LIMIT or the server's max_connections "
            "(a run holds a few at once: its lock, dbt's threads, the checks)"
        )
    elif "no pg_hba.conf entry" in low:
        text = (
            "the server's pg_hba.conf admits no such connection (host, user, database, SSL) — "
            "ask its administrator, or try sslmode=require in DATABASE_URL"
        )
    elif "certificate" in low or "ssl" in low:
        text = f"SSL: {message} — {_SSL_OPTIONS}"
    elif "does not exist" in low:
        text = f"{message} — create it, or fix the name in DATABASE_URL"
    else:
        text = f"{message} — {_CHECK}"
    return scrub(f"cannot connect to {db.display}: {text}", db.password)


def unreachable(exc: BaseException) -> bool:
    """No server answered at all (as opposed to one that refused these credentials)."""
    text = str(exc).lower()
    return any(
        fragment in text
        for fragment in (
            "connection refused",
            "no such file or directory",
            "could not translate host name",
            "timeout expired",
            "could not connect",
        )
    )


# -- passwords out of text ----------------------------------------------------------------------
# The user and password run to the first @ or / (libpq's URI parser: a space, # or ? in a
# password is the password's), on one line.
_URL = re.compile(r"(?i)\b(postgres(?:ql)?(?:\+psycopg2)?://)([^/@\r\n]*@)?([^\s]*)")


def scrub(text: str, password: str | None) -> str:
    """``text`` without ``password`` (in any form: :func:`racemap.errors.blank_secrets`) and
    without any URL's password."""
    return mask_url_passwords(blank_secrets(text, [password]))


def mask_url_passwords(text: str) -> str:
    """Every PostgreSQL URL in ``text`` with its password (userinfo or ``password=``) masked."""

    def mask(match: re.Match) -> str:
        scheme, userinfo, rest = match.group(1), match.group(2) or "", match.group(3)
        if userinfo:
            user, colon, _password = userinfo[:-1].partition(":")
            userinfo = f"{user}:***@" if colon else userinfo
        rest = re.sub(r"(?i)([?&]password=)[^&#\s]*", r"\1***", rest)
        return scheme + userinfo + rest

    return _URL.sub(mask, text)


def scrub_argv(argv: list[str] | None = None) -> None:
    """Mask URL passwords in ``sys.argv`` in place (:func:`masked_argv`): dbt records the
    command line (``INVOCATION_COMMAND`` in dbt/cli/flags.py, written to run_results.json and
    dbt.log) and masks only the raw values of DBT_ENV_SECRET_* variables."""
    argv = sys.argv if argv is None else argv
    argv[:] = masked_argv(argv)


def masked_argv(argv: list[str]) -> list[str]:
    """``argv`` as it may be shown or recorded: every URL's password masked, and the whole
    value of a secret option (``--notify-url``). The command line's one redaction, for dbt's
    record of it and for argparse's usage errors, which repeat what they could not use."""
    shown = [mask_url_passwords(arg) for arg in argv]
    for i, arg in enumerate(shown):
        # A webhook's path is its token: its URL is masked whole.
        name, equals, _value = arg.partition("=")
        if _secret_option(name) and equals:
            shown[i] = name + "=***"
        elif _secret_option(arg) and i + 1 < len(shown):
            shown[i + 1] = "***"
        else:
            shown[i] = _HTTP_USERINFO.sub(r"\1\2:***@", shown[i])
    return shown


# Options whose whole value is a secret; any other http(s) URL keeps all but its password.
SECRET_URL_OPTIONS = ("--notify-url",)


def _secret_option(name: str) -> bool:
    """``name`` is a secret option, or an abbreviation argparse accepts for it (``--n``)."""
    return (
        len(name) > 2
        and name.startswith("--")
        and any(option.startswith(name) for option in SECRET_URL_OPTIONS)
    )


_HTTP_USERINFO = re.compile(r"(?i)(https?://)([^:/@\s]*):[^@/\s]*@")


# -- finding the database -----------------------------------------------------------------------
def parse_database_url(url: str) -> Database:
    """Parse a PostgreSQL URL; anything else is a usage error (exit 2: one line, no password).

    What the URL leaves out comes from the libpq variables, as psql would take it (``PGHOST``,
    ``PGPORT``, ``PGUSER``, ``PGDATABASE``, ``PGPASSWORD``), else localhost:5432 and the OS user.
    """
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES:
        raise UsageError(
            f"DATABASE_URL must be a PostgreSQL URL (postgresql://user@host:port/dbname), "
            f"not a {parts.scheme or 'schemeless'} URL"
        )
    authority = url.split("://", 1)[1].split("/", 1)[0].split("?", 1)[0]
    if authority.count("@") > 1:
        raise UsageError(
            "DATABASE_URL has more than one '@' before the host: URL-encode the password "
            "(@ : / % as %40 %3A %2F %25)"
        )
    plain = url.replace(parts.scheme + "://", "postgresql://", 1)
    try:
        dsn = psycopg2.extensions.parse_dsn(plain)
    except psycopg2.ProgrammingError as exc:
        # libpq's message may quote a piece of the URL: only the keyword is shown.
        unknown = re.search(r'invalid URI query parameter: "([A-Za-z_]+)"', str(exc))
        if unknown:
            raise UsageError(
                f"DATABASE_URL has an unknown option {unknown.group(1)!r}: see "
                "https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-PARAMKEYWORDS"
            ) from None
        if "percent" in str(exc):
            raise UsageError(
                "DATABASE_URL has a bad %-escape: URL-encode the password (@ : / % as "
                "%40 %3A %2F %25)"
            ) from None
        raise UsageError("DATABASE_URL is not a valid PostgreSQL URL") from None
    options = {k: v for k, v in dsn.items() if k not in _CORE}
    unsupported = sorted(k for k in options if k not in KEYWORD_ENV and k not in PROFILE_ONLY)
    if unsupported:
        raise UsageError(
            f"DATABASE_URL option {', '.join(unsupported)} cannot reach dbt (libpq has no "
            "environment variable for it): remove it, or put it in a connection service file "
            "and name the service (?service=NAME; "
            "https://www.postgresql.org/docs/current/libpq-pgservice.html)"
        )
    env = os.environ
    try:
        port = int(dsn.get("port") or env.get("PGPORT") or 5432)
    except ValueError:
        raise UsageError("DATABASE_URL has a port that is not a number") from None
    user = dsn.get("user") or env.get("PGUSER") or env.get("USER") or "postgres"
    return Database(
        host=dsn.get("host") or env.get("PGHOST") or "localhost",
        port=port,
        user=user,
        dbname=dsn.get("dbname") or env.get("PGDATABASE") or user,
        password=dsn.get("password"),
        options=options,
    )


def start_embedded(pgdata: Path = EMBEDDED_PGDATA, cleanup_mode: str | None = "stop") -> Database:
    """Start (or attach to) the embedded PostgreSQL whose data lives in ``pgdata``.

    The shell's libpq variables never reach it: the server is started without them (PostgreSQL
    takes its port from PGPORT), and this process's environment is set to the server's socket
    with every other libpq variable cleared, for racemap and its children.
    """
    import pgserver  # imported here: only the embedded path needs it

    pgdata = Path(pgdata)
    pgdata.mkdir(parents=True, exist_ok=True)
    saved = {name: os.environ.pop(name) for name in LIBPQ_VARIABLES if name in os.environ}
    try:
        server = pgserver.get_server(pgdata, cleanup_mode=cleanup_mode)
        info = server.get_postmaster_info()
    except Exception as exc:  # pgserver raises plain exceptions with long logs
        raise RacemapError(
            f"cannot start the embedded PostgreSQL in {pgdata}: {first_line(exc)}"
        ) from None
    finally:
        os.environ.update(saved)
    db = Database(
        host=str(info.socket_dir or pgdata),
        port=int(info.port or 5432),
        user="postgres",
        dbname="postgres",
        embedded=True,
        _server=server,
    )
    db.export_env()
    return db


# The libpq variables that name a server or a database (not merely how to reach one).
NAMING_VARIABLES = ("PGHOST", "PGHOSTADDR", "PGDATABASE", "PGSERVICE")


def resolve_database(url: str | None = None, pgdata: Path | None = None) -> Database:
    """``--database-url``, else ``DATABASE_URL``, else the embedded database.

    The shell's ``PG*`` variables alone never choose the database (the embedded one ignores
    them): when they name one, a line on standard error says it is not the one used, and how
    to use it, so that no command answers about the demo while the user thinks of theirs.
    """
    url = url or os.environ.get("DATABASE_URL") or None
    if url:
        return parse_database_url(url)
    named = [name for name in NAMING_VARIABLES if os.environ.get(name)]
    if named:
        print(
            f"racemap: DATABASE_URL is not set, so this is the embedded PostgreSQL, not the "
            f"database {', '.join(named)} name: to use that one, set DATABASE_URL=postgresql:// "
            "(the PG* variables fill in what the URL leaves out) or give --database-url",
            file=sys.stderr,
            flush=True,
        )
    return start_embedded(pgdata or EMBEDDED_PGDATA)


def query_dicts(conn, query: str, params=()) -> list[dict]:
    """Rows of a query as dicts keyed by column name."""
    with conn.cursor() as cur:
        cur.execute(query, params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def quote_ident(identifier: str) -> str:
    """An identifier quoted for SQL text that cannot take a parameter: a GX query, the regclass
    text of has_*_privilege (a user's var: double quotes doubled)."""
    return '"' + identifier.replace('"', '""') + '"'


def relation_exists(conn, schema: str, table: str) -> bool:
    """Whether ``schema.table`` exists, whatever this role may do with it: pg_class, not
    information_schema (which hides what the role has no privilege on, so a role without
    its grant was told the races table does not exist instead of which grant it lacks)."""
    return relation_kind(conn, schema, table) is not None


# pg_class.relkind of what a races table may be, in words.
RELATION_KINDS = {
    "r": "table",
    "p": "partitioned table",
    "v": "view",
    "m": "materialized view",
    "f": "foreign table",
}


def relation_kind(conn, schema: str, table: str) -> str | None:
    """What ``schema.table`` is (:data:`RELATION_KINDS`' words), None when it does not exist."""
    with conn.cursor() as cur:
        cur.execute(
            "select c.relkind from pg_catalog.pg_class c"
            " join pg_catalog.pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = %s and c.relname = %s",
            (schema, table),
        )
        row = cur.fetchone()
    return None if row is None else RELATION_KINDS.get(row[0], f"relation of kind {row[0]}")


def check_columns(conn, schema: str, table: str, columns: dict[str, str], emptiable=()) -> None:
    """Every column a var names (``{var: column}``; an empty column is none) exists in
    ``schema.table``: else one line naming the var to set. ``emptiable``: vars that may be set
    empty for none, which the line says too."""
    with conn.cursor() as cur:
        # pg_attribute, not information_schema: a role without its grant sees every column
        # (and is then told which grant it lacks), as relation_exists sees every table.
        cur.execute(
            "select a.attname from pg_catalog.pg_attribute a"
            " join pg_catalog.pg_class c on c.oid = a.attrelid"
            " join pg_catalog.pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = %s and c.relname = %s and a.attnum > 0 and not a.attisdropped",
            (schema, table),
        )
        present = {row[0] for row in cur.fetchall()}
    for var, column in columns.items():
        if column and column not in present:
            raise RacemapError(
                f"column {column!r} ({var}) does not exist in {schema}.{table}: "
                f"set --var {var}=<column>"
                + (f" (or --var {var}= for none)" if var in emptiable else "")
            )
