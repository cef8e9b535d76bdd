"""Every libpq option of the URL reaches every component, seen from the server's side.

The components: racemap's psycopg2 connections, any libpq client that reads only the environment
racemap exports (psql, a plain ``dbt build``), dbt (in-process, as racemap runs it), Great
Expectations (the ``${RACEMAP_GX_DATABASE_URL}`` data source, SQLAlchemy) and a papermill kernel
(through DATABASE_URL and through the inherited environment). Each one reports the session it got:
``application_name``, a GUC set with ``options``, the user, and whether TLS with a client
certificate is on; ``sslmode=require`` against a server without SSL fails in each with libpq's own
"server does not support SSL" (proof that the option reached libpq), and a server with SSL shows
each session encrypted and authenticated by the client certificate. The shell's PG* variables
never reach the embedded database.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import psycopg2
import pytest
from conftest import create_database, drop_database
from nbformat.v4 import new_code_cell, new_notebook

import racemap.db
from racemap.db import (
    LIBPQ_VARIABLES,
    Database,
    parse_database_url,
    query_dicts,
    resolve_database,
)
from racemap.errors import RacemapError
from racemap.mapping import dbt
from racemap.testing import servers as throwaway_pg

QUERY = (
    "select current_setting('application_name') as application_name,"
    " current_setting('statement_timeout') as statement_timeout,"
    " current_user::text as user_name,"
    " coalesce((select ssl from pg_stat_ssl where pid = pg_backend_pid()), false) as ssl,"
    " (select client_dn from pg_stat_ssl where pid = pg_backend_pid()) as client_dn"
)
COMPONENTS = ("psycopg2", "libpq_env", "dbt", "great_expectations", "kernel_url", "kernel_env")


def restore_env(saved: dict) -> None:
    """This process's environment as it was, and racemap.db's memory of what it exported
    forgotten: a test changed the "shell" behind racemap's back, which a real shell never does."""
    os.environ.clear()
    os.environ.update(saved)
    racemap.db._exported.clear()
    racemap.db._shell.clear()


@pytest.fixture
def clean_env():
    """This process's environment as it was, after a test exported a database's variables."""
    saved = dict(os.environ)
    yield
    restore_env(saved)


# -- each component's session -------------------------------------------------------------------
def via_psycopg2(db: Database) -> dict:
    with db.transaction() as conn:
        return query_dicts(conn, QUERY)[0]


def via_libpq_env(db: Database) -> dict:
    """A libpq client that knows nothing but the environment (as psql or a plain dbt build)."""
    conn = psycopg2.connect("")
    try:
        return query_dicts(conn, QUERY)[0]
    finally:
        conn.close()


def via_dbt(db: Database) -> dict:
    outcome = dbt.invoke(["show", "--inline", QUERY])
    if not outcome.success:
        raise RuntimeError("; ".join(outcome.failures))
    table = outcome.results[0].agate_table
    return dict(zip(table.column_names, table.rows[0], strict=True))


def via_great_expectations(db: Database) -> dict:
    import great_expectations as gx
    import sqlalchemy as sa

    os.environ["RACEMAP_GX_DATABASE_URL"] = db.sqlalchemy_url  # as racemap.checks.validate does
    context = gx.get_context(mode="ephemeral")
    source = context.data_sources.add_postgres(
        "connections", connection_string="${RACEMAP_GX_DATABASE_URL}"
    )
    engine = source.get_engine()
    try:
        with engine.connect() as conn:
            return dict(conn.execute(sa.text(QUERY)).mappings().one())
    finally:
        engine.dispose()


def via_kernels(db: Database, tmp_path: Path) -> dict:
    """Both ways a notebook connects: racemap's resolve_database() and plain libpq."""
    import papermill as pm

    code = (
        "import json, psycopg2\n"
        "from racemap.db import query_dicts, resolve_database\n"
        "def session(connect):\n"
        "    try:\n"
        "        conn = connect()\n"
        "    except Exception as exc:\n"
        "        return {'error': str(exc)}\n"
        f"    return query_dicts(conn, {QUERY!r})[0]\n"
        "print(json.dumps({'kernel_url': session(lambda: resolve_database().connect()),\n"
        "                  'kernel_env': session(lambda: psycopg2.connect(''))}))\n"
    )
    from traitlets.config import Config

    source, output = tmp_path / "session.ipynb", tmp_path / "session.out.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell(code)]), source)
    # As racemap.reporting.notebooks runs its kernels: over private Unix sockets.
    ipc = Config({"KernelManager": {"transport": "ipc", "ip": f"{tmp_path}/kernel"}})
    pm.execute_notebook(
        str(source),
        str(output),
        kernel_name="python3",
        progress_bar=False,
        log_output=False,
        config=ipc,
    )
    cell = nbformat.read(output, as_version=4).cells[0]
    return json.loads("".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream"))


def sessions(db: Database, tmp_path: Path) -> dict[str, dict | str]:
    """What each component gets from the server, or its first error line."""
    db.export_env()
    out: dict[str, dict | str] = {}
    for name, probe in (
        ("psycopg2", via_psycopg2),
        ("libpq_env", via_libpq_env),
        ("dbt", via_dbt),
        ("great_expectations", via_great_expectations),
    ):
        try:
            out[name] = probe(db)
        except Exception as exc:
            out[name] = str(exc).strip()
    for name, got in via_kernels(db, tmp_path).items():
        out[name] = got.get("error", got) if isinstance(got, dict) else got
    return out


# -- the URL keeps its options ------------------------------------------------------------------
URL = (
    "postgresql://u:p%40ss%3Aw%2Frd%25@db.example.com:6543/app?sslmode=verify-full"
    "&sslrootcert=/x/ca.pem&sslcert=/x/client.pem&sslkey=/x/client.key"
    "&options=-c%20search_path%3Dfoo&application_name=x&connect_timeout=5"
)


def test_a_url_keeps_every_libpq_option_on_every_path(clean_env):
    import sqlalchemy as sa

    db = parse_database_url(URL)
    assert db.password == "p@ss:w/rd%"
    options = {
        "sslmode": "verify-full",
        "sslrootcert": "/x/ca.pem",
        "sslcert": "/x/client.pem",
        "sslkey": "/x/client.key",
        "options": "-c search_path=foo",
        "application_name": "x",
        "connect_timeout": "5",
    }
    assert db.options == options
    assert parse_database_url(db.url) == db  # the URL the kernels get
    assert {k: v for k, v in db.connect_kwargs().items() if k in options} == options
    gx_url = sa.engine.make_url(db.sqlalchemy_url)  # the URL Great Expectations opens
    assert gx_url.password == "p@ss:w/rd%" and dict(gx_url.query) == options
    env = db.libpq_env()
    assert {
        name: env[name]
        for name in (
            "PGSSLMODE",
            "PGSSLROOTCERT",
            "PGSSLCERT",
            "PGSSLKEY",
            "PGOPTIONS",
            "PGAPPNAME",
            "PGCONNECT_TIMEOUT",
        )
    } == {
        "PGSSLMODE": "verify-full",
        "PGSSLROOTCERT": "/x/ca.pem",
        "PGSSLCERT": "/x/client.pem",
        "PGSSLKEY": "/x/client.key",
        "PGOPTIONS": "-c search_path=foo",
        "PGAPPNAME": "x",
        "PGCONNECT_TIMEOUT": "5",
    }
    assert env["DBT_ENV_SECRET_PGPASSWORD"] == "p@ss:w/rd%"
    assert env["DBT_ENV_SECRET_PGPASSWORD_URLENCODED"] == "p%40ss%3Aw%2Frd%25"
    assert "p@ss" not in db.display and "p%40ss" not in db.display


def test_the_url_wins_over_the_shell_and_a_second_database_gets_no_stale_option(
    clean_env, monkeypatch
):
    monkeypatch.setenv("PGSSLMODE", "require")
    monkeypatch.setenv("PGAPPNAME", "from-the-shell")
    monkeypatch.setenv("PGSSLROOTCERT", "/shell/ca.pem")
    first = parse_database_url("postgresql://u@h/db?sslmode=disable&options=-c%20work_mem%3D8MB")
    first.export_env()
    assert os.environ["PGSSLMODE"] == "disable"  # the URL's option wins
    assert os.environ["PGAPPNAME"] == "from-the-shell"  # the shell's stays where the URL is silent
    assert os.environ["PGOPTIONS"] == "-c work_mem=8MB"
    parse_database_url("postgresql://u@h/other").export_env()
    assert os.environ["PGSSLMODE"] == "require"  # the shell's again, not the first URL's
    assert "PGOPTIONS" not in os.environ
    assert os.environ["PGSSLROOTCERT"] == "/shell/ca.pem"


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("postgresql://u@h/db?keepalives_count=3", "keepalives_count cannot reach dbt"),
        ("postgresql://u@h/db?no_such_option=1", "unknown option 'no_such_option'"),
        ("postgresql://u:p@ss:w/rd%@h/db", "URL-encode the password"),
        ("postgresql://u:pa%ss@h/db", "URL-encode the password"),
    ],
)
def test_a_url_racemap_cannot_pass_on_is_one_line(url, fragment):
    with pytest.raises(RacemapError) as caught:
        parse_database_url(url)
    assert fragment in str(caught.value)
    assert "ss:w" not in str(caught.value) and "pa%ss" not in str(caught.value)


# -- on the test server: application_name and options, from every component --------------------
def test_application_name_and_options_reach_every_component(tmp_path):
    db = create_database("racemap_conn")
    saved = dict(os.environ)
    try:
        db.options = {
            "application_name": "racemap-conn-test",
            "options": "-c statement_timeout=4321 -c search_path=racemap,public",
        }
        got = sessions(db, tmp_path)
    finally:
        restore_env(saved)  # before the drop: its connection must not get those options
        drop_database(db)
    assert set(got) == set(COMPONENTS)
    for component, session in got.items():
        assert isinstance(session, dict), f"{component}: {session}"
        assert session["application_name"] == "racemap-conn-test", component
        assert session["statement_timeout"] == "4321ms", component


# -- a server without SSL over TCP: sslmode=require fails in every component --------------------
ADMIN_PASSWORD = "pl@in:tcp/pw%"


@pytest.fixture(scope="module")
def plain_tcp_server():
    """pgserver's build: no SSL; passwords checked over TCP."""
    server = throwaway_pg.start(hba="host all all 127.0.0.1/32 scram-sha-256")
    server.execute("alter role postgres password 'pl@in:tcp/pw%'")
    yield server
    server.stop()


def test_sslmode_require_reaches_every_component(plain_tcp_server, tmp_path, clean_env):
    db = plain_tcp_server.tcp("postgres", "postgres", ADMIN_PASSWORD, sslmode="require")
    got = sessions(db, tmp_path)
    assert set(got) == set(COMPONENTS)
    for component, error in got.items():
        assert isinstance(error, str), f"{component} connected without SSL: {error}"
        assert "server does not support SSL" in error, f"{component}: {error}"
    # racemap's own line says what to do
    assert "enable SSL on the server, or lower sslmode" in got["psycopg2"]
    # without sslmode the same server answers every component: the option made the failure
    plain = sessions(dataclasses.replace(db, options={}), tmp_path)
    assert all(isinstance(session, dict) for session in plain.values()), plain


# -- one line a person can act on --------------------------------------------------------------
def test_connection_failures_say_what_to_do_without_the_password(plain_tcp_server, clean_env):
    port = plain_tcp_server.port
    cases = [
        (
            plain_tcp_server.tcp("postgres", "postgres", "wr@ng:pw%"),
            "wrong password for user postgres — check the password in DATABASE_URL",
        ),
        (
            plain_tcp_server.tcp("postgres", "postgres", None),
            "the server wants a password — put it in DATABASE_URL or PGPASSWORD",
        ),
        (
            plain_tcp_server.tcp("postgres", "no_such_db", ADMIN_PASSWORD),
            'database "no_such_db" does not exist — create it, or fix the name in DATABASE_URL',
        ),
        (
            Database("127.0.0.1", 1, "postgres", "postgres", "secret-pw"),
            "connection refused — is the server running and accepting TCP on 127.0.0.1:1? "
            "check DATABASE_URL",
        ),
        (
            Database("no-such-host.invalid", port, "postgres", "postgres", "secret-pw"),
            "unknown host no-such-host.invalid — check the host name in DATABASE_URL",
        ),
    ]
    for db, expected in cases:
        os.environ.pop("PGPASSWORD", None)
        with pytest.raises(RacemapError) as caught:
            db.connect().close()
        line = str(caught.value)
        assert line.startswith(f"cannot connect to {db.display}: "), line
        assert expected in line and "\n" not in line, line
        for secret in ("wr@ng:pw%", "wr%40ng", ADMIN_PASSWORD, "pl%40in", "secret-pw"):
            assert secret not in line


def test_the_command_line_shows_that_line_and_no_traceback(plain_tcp_server, tmp_path):
    url = plain_tcp_server.tcp("postgres", "postgres", "wr@ng:pw%").url
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PGPASSWORD")}
    done = subprocess.run(
        [sys.executable, "-m", "racemap.cli", "lookup", "--race-id", "1", "--database-url", url],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"racemap: cannot connect to postgresql://postgres:***@localhost:{plain_tcp_server.port}"
        "/postgres: wrong password for user postgres — check the password in DATABASE_URL "
        "(URL-encode @ : / % in the password as %40 %3A %2F %25)"
    ]


# -- a server with SSL: every session encrypted, the client certificate verified ----------------
@pytest.fixture(scope="module")
def ssl_server(tmp_path_factory):
    bindir = throwaway_pg.ssl_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL built with OpenSSL installed (pgserver's has no SSL)")
    certs = throwaway_pg.make_certificates(tmp_path_factory.mktemp("certs"), "racemap_cert")
    server = throwaway_pg.start(
        bindir,
        hba="hostssl all racemap_cert 127.0.0.1/32 cert\nhost all all 127.0.0.1/32 reject",
        ssl_files={"cert": certs["server.pem"], "key": certs["server.key"], "ca": certs["ca.pem"]},
    )
    server.execute("create role racemap_cert login")
    yield server, certs
    server.stop()


def test_verify_full_with_a_client_certificate_reaches_every_component(
    ssl_server, tmp_path, clean_env
):
    server, certs = ssl_server
    db = server.tcp(
        "racemap_cert",
        "postgres",
        sslmode="verify-full",
        sslrootcert=str(certs["ca.pem"]),
        sslcert=str(certs["client.pem"]),
        sslkey=str(certs["client.key"]),
        application_name="racemap-ssl-test",
    )
    got = sessions(db, tmp_path)
    for component, session in got.items():
        assert isinstance(session, dict), f"{component}: {session}"
        # hba admits racemap_cert only over TLS with its certificate: each piece reached libpq
        assert session["ssl"] is True and session["client_dn"] == "/CN=racemap_cert", component
        assert session["application_name"] == "racemap-ssl-test", component
    # the wrong CA: verify-full refuses the server in every component
    db.options["sslrootcert"] = str(certs["server.pem"])
    wrong_ca = sessions(db, tmp_path)
    for component, error in wrong_ca.items():
        assert isinstance(error, str) and "certificate verify failed" in error, component
    assert "— check sslmode, sslrootcert, sslcert and sslkey in" in wrong_ca["psycopg2"]


# -- the embedded database ignores the shell's PG* variables ------------------------------------
HOSTILE = {
    "PGHOST": "/nonexistent",
    "PGPORT": "5433",
    "PGSSLMODE": "require",
    "PGOPTIONS": "-c statement_timeout=1",
    "PGSERVICE": "no_such_service",
    "PGHOSTADDR": "10.255.255.1",
    "PGAPPNAME": "from-the-shell",
    "PGREQUIREAUTH": "scram-sha-256",
    "PGUSER": "nobody",
    "PGDATABASE": "nowhere",
}


def test_the_shells_pg_variables_never_reach_the_embedded_database(
    tmp_path, server_dir, clean_env, monkeypatch, capsys
):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    for name, value in HOSTILE.items():
        monkeypatch.setenv(name, value)
    db = resolve_database(pgdata=server_dir / "pgdata")
    try:
        assert db.embedded
        # ... and the user, whose PG* variables name another database, is told in one line
        # that this is not it (`racemap status` answered about the demo, saying nothing).
        said = capsys.readouterr().err.strip().splitlines()
        assert len(said) == 1, said
        assert "embedded PostgreSQL, not the database PGHOST, PGHOSTADDR, PGDATABASE" in said[0]
        assert "set DATABASE_URL=postgresql://" in said[0]
        # this process and its children: the server's variables, no other libpq variable
        for name in LIBPQ_VARIABLES:
            if name not in {"PGHOST", "PGPORT", "PGUSER", "PGDATABASE"}:
                assert name not in os.environ, name
        got = sessions(db, tmp_path)
        for component, session in got.items():
            assert isinstance(session, dict), f"{component}: {session}"
            assert session["statement_timeout"] == "0", component
            assert session["user_name"] == "postgres", component
        child = subprocess.run(
            [sys.executable, "-c", "import psycopg2; psycopg2.connect('').close()"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert child.returncode == 0, child.stderr
    finally:
        db._server.cleanup()


# -- make test anywhere -------------------------------------------------------------------------
def test_with_no_server_answering_the_suite_uses_an_embedded_one(server_dir):
    """scripts/test_server.py: one line, then the command on the embedded server's socket."""
    script = Path(__file__).resolve().parent.parent / "scripts" / "test_server.py"
    env = {k: v for k, v in os.environ.items() if k != "RACEMAP_TEST_SERVER"}
    env.update(
        RACEMAP_TEST_DATABASE_URL="postgresql://postgres@127.0.0.1:1/postgres",
        PGPORT="1",  # nothing may fall back to a default port
        PGSSLMODE="require",
        RACEMAP_TEST_PGDATA=str(server_dir / "test-pgdata"),
    )
    child = (
        "import os, subprocess, sys, psycopg2\n"
        "conn = psycopg2.connect(os.environ['RACEMAP_TEST_DATABASE_URL'])\n"
        "conn.close(); psycopg2.connect('').close()\n"
        "print(os.environ['PGHOST'], os.environ['PGPORT'], 'PGSSLMODE' in os.environ)\n"
        # a nested call (make test -> make lint) finds the same server and stays quiet
        "sys.exit(subprocess.run([sys.executable, sys.argv[1], 'true']).returncode)\n"
    )
    try:
        done = subprocess.run(
            [sys.executable, script, sys.executable, "-c", child, script],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert done.stderr.splitlines() == [
            f"racemap tests: embedded PostgreSQL in {server_dir / 'test-pgdata'} "
            "(no server at postgresql://postgres@127.0.0.1:1/postgres)"
        ]
        assert done.stdout.split() == [str(server_dir / "test-pgdata"), "5432", "False"]
    finally:
        stop = subprocess.run(
            [sys.executable, script, "--stop"], env=env, capture_output=True, text=True
        )
    assert stop.returncode == 0, stop.stderr[-1000:]
    assert not (server_dir / "test-pgdata" / "postmaster.pid").exists()
