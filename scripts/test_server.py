"""Which PostgreSQL server the test suite uses: decided here, for `make lint`, `make test` and
tests/conftest.py alike.

1. ``$RACEMAP_TEST_DATABASE_URL`` when set, else the server the libpq variables name
   (``PGHOST``/``PGPORT``/``PGUSER``/``PGPASSWORD``, by default ``127.0.0.1:5432`` as user
   ``postgres``), when a server answers there;
2. else the embedded PostgreSQL (pgserver) in ``.racemap/test-pgdata``, started and left running
   (cleanup mode None) so that pytest, its ``racemap run`` children and sqlfluff share it. It
   listens on a Unix socket only: the URL is ``postgresql://postgres@localhost:PORT/postgres?
   host=DIR``.

``python scripts/test_server.py CMD ARG...`` prints one line saying which server it is, then runs
CMD with ``RACEMAP_TEST_DATABASE_URL`` and that server's libpq variables (every other libpq
variable of the shell cleared: a ``PGSSLMODE`` or ``PGOPTIONS`` of the developer's never reaches
the tests). Nested calls (``make test`` runs ``make lint`` and pytest under it) find the same
server and stay quiet. Without CMD it prints the line and the URL (password masked);
``--stop`` stops the embedded test server.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from racemap.db import Database, parse_database_url, start_embedded, unreachable  # noqa: E402
from racemap.errors import RacemapError  # noqa: E402

TEST_PGDATA = Path(
    os.environ.get("RACEMAP_TEST_PGDATA") or PROJECT_DIR / ".racemap" / "test-pgdata"
)
URL_VARIABLE = "RACEMAP_TEST_DATABASE_URL"
LINE_VARIABLE = "RACEMAP_TEST_SERVER"


def _default_url() -> str:
    """The server psql would reach with the shell's libpq variables (127.0.0.1:5432 if none)."""
    port = os.environ.get("PGPORT") or "5432"
    if not port.isdigit():
        raise RacemapError(f"PGPORT is not a port number: {port!r}")
    probe = Database(
        host=os.environ.get("PGHOST") or "127.0.0.1",
        port=int(port),
        user=os.environ.get("PGUSER") or "postgres",
        dbname="postgres",
        password=os.environ.get("PGPASSWORD") or None,
    )
    return probe.url


def _answers(db: Database) -> bool:
    """A server is there (a refused password is a server too: the tests then say why)."""
    import psycopg2

    kwargs = {**db.connect_kwargs(), "connect_timeout": 3}
    try:
        psycopg2.connect(**kwargs).close()
    except psycopg2.OperationalError as exc:
        return not unreachable(exc)
    return True


def decide() -> tuple[Database, str]:
    """The test server and the one line that says which it is."""
    given = os.environ.get(URL_VARIABLE)
    candidate = parse_database_url(given or _default_url())
    # Probe with the candidate's own variables only, as the tests will use it.
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(candidate.child_env(saved, isolated=True))
        if _answers(candidate):
            # Under `make test` the outer call decided already: its line stands.
            line = (given and os.environ.get(LINE_VARIABLE)) or (
                f"racemap tests: PostgreSQL at {candidate.display}"
            )
            return candidate, line
    finally:
        os.environ.clear()
        os.environ.update(saved)
    try:
        embedded = start_embedded(TEST_PGDATA, cleanup_mode=None)
    finally:
        os.environ.clear()
        os.environ.update(saved)  # start_embedded exported its variables: the caller decides
    server = Database(embedded.host, embedded.port, embedded.user, embedded.dbname)
    where = (
        TEST_PGDATA.relative_to(PROJECT_DIR)
        if TEST_PGDATA.is_relative_to(PROJECT_DIR)
        else TEST_PGDATA
    )
    return server, (
        f"racemap tests: embedded PostgreSQL in {where} (no server at {candidate.display})"
    )


def suite_env(server: Database, line: str, base=None) -> dict[str, str]:
    """The environment the tests run in: the server's URL and libpq variables, nothing else."""
    env = server.child_env(base, isolated=True)
    env[URL_VARIABLE] = server.url
    env[LINE_VARIABLE] = line
    env.pop("DATABASE_URL", None)  # the tests choose their databases
    return env


def stop() -> int:
    """Stop the embedded test server."""
    if not (TEST_PGDATA / "postmaster.pid").exists():
        print(f"racemap tests: no embedded server running in {TEST_PGDATA}", file=sys.stderr)
        return 0
    from pgserver.postgres_server import pg_ctl

    # pg_ctl itself: pgserver's own count of handles keeps the pid of every `exec`ed call.
    # As root, pgserver runs the server as its `pgserver` user (pgserver/postgres_server.py).
    user = "pgserver" if os.geteuid() == 0 else None
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=TEST_PGDATA, user=user)
    print(f"racemap tests: stopped the embedded server in {TEST_PGDATA}", file=sys.stderr)
    return 0


def main(argv: list[str]) -> int:
    if argv == ["--stop"]:
        return stop()
    try:
        server, line = decide()
    except RacemapError as exc:
        print(f"racemap tests: {exc}", file=sys.stderr)
        return 1
    if os.environ.get(LINE_VARIABLE) != line:
        print(line, file=sys.stderr, flush=True)
    if not argv:
        print(server.display)
        return 0
    os.execvpe(argv[0], argv, suite_env(server, line))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
