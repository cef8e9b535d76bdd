"""A password that needs URL-encoding never lands in a file or a log line of a run.

A throw-away server that checks passwords (scram-sha-256 over TCP), a role whose password is
``p@ss:w/rd%``, and two real ``racemap run`` processes: one given ``--database-url`` (spelled
with lower-case escapes, as a person may type it), one ``DATABASE_URL``. Both must succeed (so
the password reached psycopg2, dbt, Great Expectations and the kernels), racemap's schemas must
belong to that role (the connections used the URL), and no file the runs wrote (reports,
executed notebooks, dbt's target/ and logs/, the GX context, anything new in the project
directory) nor their output may hold the password raw or URL-encoded, nor the token of the
webhook URL the first run is given (``--notify-url``: dbt records the command line).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from conftest import AS_OF, demo_races

from racemap.paths import PROJECT_DIR
from racemap.testing import servers as throwaway_pg

PASSWORD = "p@ss:w/rd%"
ROLE = "racemap_secret"
FORMS = {
    "raw": PASSWORD,
    "encoded": quote(PASSWORD, safe=""),  # p%40ss%3Aw%2Frd%25
    "encoded, lower-case": quote(PASSWORD, safe="").lower(),  # p%40ss%3aw%2frd%25
    "encoded, kept /": quote(PASSWORD),  # p%40ss%3Aw/rd%25
}
# Not the runs' files: installed packages, git, the database servers' data.
# A webhook's path is its token (Slack's incoming webhooks): given to the first run, no file
# may hold it (dbt records the command line). Nothing listens on port 9 (a first run has no
# changes to tell of: it posts nothing).
TOKEN = "T0KEN-b7e2/Bx9-wEbHoOk-3c1d"
NOTIFY_URL = f"http://127.0.0.1:9/services/{TOKEN}"
SKIP = {(".venv",), (".git",), (".racemap", "pgdata"), (".racemap", "test-pgdata")}


@pytest.fixture(scope="module")
def password_server():
    server = throwaway_pg.start(hba="host all all 127.0.0.1/32 scram-sha-256")
    escaped = PASSWORD.replace("'", "''")
    server.execute(
        f"create role {ROLE} login password '{escaped}'",
        f"create database racemap_secret owner {ROLE}",
    )
    db = server.tcp(ROLE, "racemap_secret", PASSWORD)
    demo_races(db)  # as the application's owner would have them
    yield server, db
    server.stop()


def _new_files(root: Path, since: float):
    """The files below ``root`` written since ``since``, with their bytes. Under pytest-xdist
    other tests' runs write in the project directory too: a file gone between the listing and
    the read (a report set being published, say) was not this test's and is passed over."""
    for path in root.rglob("*"):
        parts = path.relative_to(root).parts
        if any(parts[: len(skip)] == skip for skip in SKIP):
            continue
        try:
            if path.is_file() and path.stat().st_mtime >= since:
                yield path, path.read_bytes()
        except FileNotFoundError:
            continue


def _run(args: list[str], tmp: Path, name: str, extra_env: dict) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PGPASSWORD")}
    env.update(
        # A run keeps dbt's target and logs and the GX context per database under here.
        RACEMAP_STATE_DIR=str(tmp / name / "state"),
        **extra_env,
    )
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "racemap.cli",
            "run",
            *args,
            "--reports-dir",
            str(tmp / name / "reports"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_an_encoded_password_reaches_every_component_and_no_file(password_server, tmp_path):
    server, db = password_server
    common = ["--offline", "--seasons", "2023-2025", "--var", f"as_of={AS_OF}"]
    typed = db.url.replace(FORMS["encoded"], FORMS["encoded, lower-case"])
    assert typed != db.url  # a spelling racemap does not write itself
    start = time.time() - 1
    by_flag = _run(
        ["--database-url", typed, "--notify-url", NOTIFY_URL, *common], tmp_path, "flag", {}
    )
    assert by_flag.returncode == 0, by_flag.stderr[-2000:]
    by_env = _run(common, tmp_path, "env", {"DATABASE_URL": db.url})
    assert by_env.returncode == 0, by_env.stderr[-2000:]
    # Each started in a state directory of its own: while dbt first parses, the run says so.
    for done in (by_flag, by_env):
        assert "(dbt parses the project first: a while on a first run" in done.stdout

    # The connections used the URL: racemap's schemas belong to its role, not to postgres.
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(
            "select nspname, pg_get_userbyid(nspowner) from pg_namespace"
            " where nspname in ('raw', 'racemap') order by 1"
        )
        assert cur.fetchall() == [("racemap", ROLE), ("raw", ROLE)]

    written = {**dict(_new_files(tmp_path, start)), **dict(_new_files(PROJECT_DIR, start))}
    names = {p.name for p in written}
    # the places the issue named were really written, so the scan below means something
    assert {"run_results.json", "dbt.log", "summary.json", "load_openf1.ipynb"} <= names
    assert any("gx-root" in p.parts for p in written)
    leaks = [
        f"{label} in {path}"
        for path, content in written.items()
        for label, form in {**FORMS, "webhook token": TOKEN}.items()
        if form.encode() in content
    ]
    for done in (by_flag, by_env):
        leaks += [
            f"{label} in the output"
            for label, form in {**FORMS, "webhook token": TOKEN}.items()
            if form in done.stdout + done.stderr
        ]
    assert not leaks
