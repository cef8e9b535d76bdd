"""The command line on bad input: one clear line on stderr, a non-zero exit, no traceback,
nothing half-written, no password in any line. And the embedded database end to end. (A whole
run's files and output hold no password: tests/test_secrets.py, with a server that checks it.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import AS_OF, database_copy, query

from racemap.db import Database

PASSWORD = "pw-not-for-logs-7f3a"


def racemap(*args, env_extra=None, cwd=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PGPASSWORD")}
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "racemap.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=cwd,
    )


def assert_one_clear_line(done, *fragments):
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.startswith("racemap:")]
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    assert PASSWORD not in done.stderr + done.stdout


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        (f"mysql://root:{PASSWORD}@127.0.0.1:3306/test", "must be a PostgreSQL URL"),
        ("not a url at all", "must be a PostgreSQL URL"),
        (f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/postgres", "cannot connect to"),
        (
            f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/racemap_no_such_db",
            "cannot connect to",
        ),
    ],
)
def test_bad_database_url(url, fragment, tmp_path):
    done = racemap("run", "--offline", "--database-url", url, "--reports-dir", str(tmp_path))
    assert_one_clear_line(done, fragment)
    if fragment == "must be a PostgreSQL URL":
        assert not any(tmp_path.iterdir())  # bad input: nothing ran, nothing written
    else:
        # The run could not reach its database: its summary says so, and nothing else (no
        # earlier report) stays beside it.
        shown = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))
        assert shown == ["current", "summary.json"]  # the published set: its summary alone
        summary = json.loads((tmp_path / "summary.json").read_text())
        assert (summary["verdict"], summary["stopped_at"]) == ("failed", "start_database")
        assert "cannot connect to" in summary["error"] and PASSWORD not in summary["error"]


def test_missing_races_table_on_a_user_database(fresh_db, tmp_path):
    url = Database(fresh_db.host, fresh_db.port, fresh_db.user, fresh_db.dbname, PASSWORD).url
    done = racemap("run", "--offline", "--database-url", url, "--reports-dir", str(tmp_path))
    assert_one_clear_line(done, "table public.races does not exist")
    # racemap does not create an application table on a database the user pointed it at
    assert query(fresh_db, "select to_regclass('public.races')") == [(None,)]


def test_bad_seasons_and_vars(tmp_path):
    done = racemap("run", "--offline", "--seasons", "2025-2023", "--reports-dir", str(tmp_path))
    assert_one_clear_line(done, "--seasons")
    done = racemap("run", "--offline", "--var", "races_table", "--reports-dir", str(tmp_path))
    assert_one_clear_line(done, "NAME=VALUE")


def test_embedded_database_end_to_end(tmp_path, server_dir, monkeypatch):
    """No DATABASE_URL: pgserver in a data directory of its own, demo races created once."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    pgdata = server_dir / "pgdata"
    from racemap.pipeline import RunOptions, run

    def embedded_run(reports):
        # No --seasons: 2023 to this year, as `make run ARGS=--offline` does; the snapshot
        # has nothing for 2026, which is an empty season, not a failure.
        return run(
            RunOptions(
                seasons=None,
                offline=True,
                reports_dir=reports,
                variables={"as_of": AS_OF},
                pgdata=pgdata,
                log=lambda *_: None,
            )
        )

    try:
        first = embedded_run(tmp_path / "first")
        assert first.exit_code == 0, first.failures
        assert first.summary["database"].startswith("embedded PostgreSQL")
        assert first.summary["mapped"] == 70 and first.summary["updates_applied"] == 70
        second = embedded_run(tmp_path / "second")  # the data directory survives between runs
        assert second.summary["mapped"] == 70 and second.summary["updates"] == 0
    finally:
        # Stopped here, before server_dir is removed, not at the interpreter's exit.
        import pgserver

        pgserver.get_server(pgdata).cleanup()


def test_the_demo_tables_line_names_every_table_it_created(fresh_db):
    """The embedded demo's first run creates races, circuits, results and drivers (README);
    its line named the first two only."""
    import dataclasses

    from racemap.errors import RacemapError
    from racemap.pipeline import prepare_races
    from racemap.settings import RacesTable

    said = []
    embedded = dataclasses.replace(fresh_db, embedded=True)  # as the embedded database is
    with pytest.raises(RacemapError, match="a dry run changes nothing"):  # stops before dbt
        prepare_races(embedded, RacesTable.from_vars({}), {}, dry_run=True, log=said.append)
    assert said == [
        "created the demo tables public.races (1160 races), public.circuits, public.results "
        "and public.drivers"
    ]
    assert query(fresh_db, "select count(*) from public.results") != [(0,)]


def test_dbt_log_level_file_is_info_by_default_and_taken_in_any_case():
    """dbt's own variable, which racemap passes on as ``--log-level-file``: dbt takes any case."""
    from racemap.settings import load_environment

    assert load_environment({}).dbt_log_level_file == "info"
    assert load_environment({"DBT_LOG_LEVEL_FILE": " Debug "}).dbt_log_level_file == "debug"


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("RACEMAP_DATA_DOCS_RUNS", "many", "RACEMAP_DATA_DOCS_RUNS='many': give a whole number"),
        ("RACEMAP_FRESHNESS_WARN_DAYS", "-1", "RACEMAP_FRESHNESS_WARN_DAYS='-1': give a number"),
        ("OPENF1_RATE_LIMIT", "lots", "OPENF1_RATE_LIMIT='lots': give requests/seconds"),
        ("OPENF1_URL", f"ftp://u:{PASSWORD}@openf1.test", "OPENF1_URL: give an http(s):// URL"),
        ("DATABASE_URL", f"mysql://root:{PASSWORD}@h/x", "must be a PostgreSQL URL"),
        ("RACEMAP_NOTIFY_URL", "hooks.example", "RACEMAP_NOTIFY_URL: give an http(s):// URL"),
        ("RACEMAP_NOTIFY_URL", "https://h:65536/s3", "RACEMAP_NOTIFY_URL: give an http(s)://"),
        ("DBT_LOG_LEVEL_FILE", "verbose", "DBT_LOG_LEVEL_FILE='verbose': give debug, info"),
        # set for another dbt project: dbt failed at dbt_build, after the load
        ("DBT_TARGET", "prod", "DBT_TARGET='prod': racemap's profiles.yml has no such target"),
    ],
)
def test_a_bad_environment_variable_is_one_line_and_exit_2(
    name, value, said, tmp_path, monkeypatch, capsys
):
    """Read and validated once at the edge, before any command runs: nothing is written."""
    from racemap.cli import main as cli_main

    monkeypatch.setenv(name, value)
    reports = tmp_path / "reports"
    assert cli_main(["run", "--offline", "--reports-dir", str(reports)]) == 2
    out, err = capsys.readouterr()
    assert err.splitlines() == [err.strip()] and said in err and out == ""
    assert PASSWORD not in err
    assert not reports.exists()
    assert cli_main(["status"]) == 2  # every command, not only the run


def test_the_tools_environment_is_written_in_one_place_and_restored(tmp_path, monkeypatch):
    from racemap.db import parse_database_url
    from racemap.settings import tools_environment

    db = parse_database_url(f"postgresql://u:{PASSWORD}@db.test:5433/app?sslmode=require")
    monkeypatch.setenv("DO_NOT_TRACK", "0")
    monkeypatch.delenv("PGHOST", raising=False)
    before = dict(os.environ)
    with tools_environment(db, tmp_path):
        assert (os.environ["PGHOST"], os.environ["PGPORT"], os.environ["PGSSLMODE"]) == (
            "db.test",
            "5433",
            "require",
        )
        assert os.environ["DBT_TARGET_PATH"] == str(tmp_path / "target")
        assert os.environ["DO_NOT_TRACK"] == "1" and os.environ["GX_ANALYTICS_ENABLED"] == "false"
        assert os.environ["RACEMAP_GX_DATABASE_URL"].startswith("postgresql+psycopg2://u:")
    assert dict(os.environ) == before


def test_no_module_but_the_settings_writes_the_environment():
    """Values travel as arguments; the environment is written for the tools in one place
    (settings.tools_environment; db.py's export for a notebook's embedded database)."""
    from racemap.paths import PROJECT_DIR

    writes = ("os.environ[", "os.environ.update", "os.environ.setdefault", "os.environ.pop")
    for path in sorted((PROJECT_DIR / "racemap").rglob("*.py")):
        if path.name in ("settings.py", "db.py"):
            continue
        text = path.read_text(encoding="utf-8")
        assert not [w for w in writes if w in text], path


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["run", "--database-url", "garbage"], "must be a PostgreSQL URL"),
        (["status", "--database-url", "garbage"], "must be a PostgreSQL URL"),
        (["run", "--lock-timeout", "-5"], "give 0 or more seconds, not -5"),
        (["validate", "--lock-timeout", "soon"], "not a number of seconds"),
        (["export", "--format", "xml", "--output", "x"], "invalid choice"),
        (["run", "--openf1-url", "ftp://x/v1"], "not an http(s) URL with a host: give http"),
        (["sync", "--openf1-url", "not a url"], "not an http(s) URL with a host"),
        (["run", "--notify-url", "hooks.example/T0/s3cr3t"], "--notify-url: not an http(s) URL"),
        (["run", "--notify-url", "https://"], "--notify-url: not an http(s) URL with a host"),
        # a port urllib reads only when asked: the webhook's POST failed after the run
        (["run", "--notify-url", "https://h.example:99999/T0/s3cr3t"], "--notify-url: not an"),
        (["sync", "--openf1-url", "http://127.0.0.1:70000/v1"], "--openf1-url: not an http(s)"),
    ],
)
def test_usage_errors_exit_2_with_one_line(args, fragment, tmp_path):
    done = racemap(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and not done.stdout, done.stderr
    assert "s3cr3t" not in done.stderr  # a URL's token is never repeated
    assert_one_clear_line(done, fragment)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "args",
    [
        # an option the command does not take: argparse repeats it and its value
        ["validate", "--notify-url", "https://hooks.example/services/T0/s3cr3t?token=s3cr3t"],
        ["status", "--notify-url=https://hooks.example/services/T0/s3cr3t"],
        # a mistyped option: its value is a stray argument
        ["run", "--databse-url", f"postgresql://u:{PASSWORD}%40@127.0.0.1:1/x", "--offline"],
        ["sync", "--openf1-uri", f"http://u:{PASSWORD}@127.0.0.1:1/v1"],
        # libpq reads a password with a raw space, # or ? (up to the first @)
        ["migrate", "--databse-url", f"postgresql://u:{PASSWORD} #s3cr3t?@127.0.0.1:1/x"],
    ],
)
def test_a_usage_error_repeating_the_arguments_shows_no_secret(args, tmp_path):
    """argparse's ``unrecognized arguments: ...`` line repeats what it could not use: a webhook's
    token or a database password given to the wrong command, or after a typo, was printed."""
    done = racemap(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert_one_clear_line(done, "unrecognized arguments")
    assert "s3cr3t" not in done.stderr
    assert "***" in done.stderr


@pytest.mark.parametrize("given", [["--n", "URL"], ["--n=URL"], ["--notif", "URL"]])
def test_an_abbreviated_notify_url_is_masked_in_the_command_line(given, monkeypatch):
    """argparse takes ``--n`` for ``--notify-url``, and dbt records the command line
    (run_results.json, dbt.log) as racemap leaves it: ``--n URL`` kept the webhook's token."""
    from racemap import cli

    url = "http://127.0.0.1:9/services/T0/s3cr3t"
    argv = ["racemap", "sync", "--database-url", "postgresql://u@127.0.0.1:1/x", "--offline"]
    monkeypatch.setattr(sys, "argv", argv + [arg.replace("URL", url) for arg in given])
    assert cli.build_parser().parse_args(sys.argv[1:]).notify_url == url
    assert cli.main() == 1  # no server there: the sync stops at once
    assert not [arg for arg in sys.argv if "s3cr3t" in arg], sys.argv


def test_a_database_that_does_not_exist_is_said_once(tmp_path):
    url = "postgresql://postgres@127.0.0.1:5432/racemap_no_such_db"
    done = racemap("run", "--offline", "--database-url", url, "--reports-dir", str(tmp_path))
    assert done.returncode == 1
    assert (done.stdout + done.stderr).count("does not exist") == 1, done.stdout + done.stderr
    status = racemap("status", "--json", "--database-url", url)
    assert status.returncode == 1
    shown = json.loads(status.stdout)  # JSON on stdout even when it cannot connect
    assert shown["verdict"] == "failed" and "does not exist" in shown["error"]


def test_validate_on_a_database_never_run_says_so(demo_db, tmp_path):
    done = racemap("validate", "--database-url", demo_db.url, "--reports-dir", str(tmp_path))
    assert done.returncode == 1
    assert_one_clear_line(done, "no racemap run on", "run `racemap run` first")


def test_a_racemap_process_does_not_build_jsonschemas_iri_parsers():
    """racemap/__init__.py marks rfc3987_syntax missing (jsonschema#1428): importing it builds
    Earley parsers for about 1.2 s of CPU, in every run and in its GX worker."""
    code = (
        "import racemap.cli, papermill, great_expectations, jsonschema, sys;"
        "print(sys.modules.get('rfc3987_syntax'), 'lark' in sys.modules,"
        " 'iri' in jsonschema.FormatChecker.checkers, 'uri' in jsonschema.FormatChecker.checkers)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # jsonschema keeps its other format checkers (uri from rfc3986-validator).
    assert done.stdout.split() == ["None", "False", "False", "True"]


def test_user_text_on_the_console_stays_on_its_line():
    from racemap.errors import one_line, printable

    assert printable("Ctl\x1b[2J\rname\x08 \u202egnp.exe") == (
        "Ctl\\x1b[2J\\rname\\x08 \\u202egnp.exe"
    )
    assert printable("Grand Prix de Montréal 🇨🇦 — “GP”") == "Grand Prix de Montréal 🇨🇦 — “GP”"
    assert one_line("relation does not exist\nLINE 1: select\x1b[31m") == (
        "relation does not exist LINE 1: select\\x1b[31m"
    )


def test_validate_of_a_races_table_that_is_not_there_says_so(mapped_template, tmp_path):
    with database_copy(mapped_template[0]) as db:
        args = ["--database-url", db.url, "--reports-dir", str(tmp_path)]
        done = racemap("validate", *args, "--var", "races_table=grand_prix")
    assert done.returncode == 1
    assert_one_clear_line(
        done, "table public.grand_prix does not exist in this database: name the races table"
    )


def test_validate_refused_a_connection_by_the_server_is_one_line(mapped_template, tmp_path):
    """Great Expectations logs the SQL error it meets with its traceback: on stderr, through
    logging's last-resort handler, before racemap's own line. A role allowed two connections:
    the run lock's and the checks' own; the checkpoint's engine is the third."""
    import dataclasses

    from conftest import SCRATCH

    with database_copy(mapped_template[0]) as db, SCRATCH.role(db) as role:
        with db.transaction() as conn, conn.cursor() as cur:
            cur.execute(f'grant pg_read_all_data, pg_write_all_data to "{role}"')
            cur.execute(f'alter role "{role}" connection limit 2')
        url = dataclasses.replace(db, user=role, password=None).url
        done = racemap("validate", "--database-url", url, "--reports-dir", str(tmp_path))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    # Refused where the checks' engine connects, or where an expectation's query does: either
    # way one line naming the cause, and a failure, never an attention ("None unexpected
    # rows": GX gives the error of a metric it could not compute under the metric's id).
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "too many connections for role" in lines[0], done.stderr
    assert "unexpected rows]" not in lines[0] and not lines[0].startswith("attention")
    # Said once, in words a user acts on: not GX's "Ensure the table exists" nor SQLAlchemy's
    # wrapping, nor the same error again for each expectation it stopped.
    assert lines[0].count("too many connections") == 1, lines[0]
    assert "Ensure the table exists" not in lines[0] and "sqlalche.me" not in lines[0]
    assert "CONNECTION LIMIT" in lines[0] or "expectations could not run" in lines[0]


def test_version_and_help_read_as_plain_text(tmp_path):
    from racemap import __version__

    done = racemap("--version", cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"racemap {__version__}\n", "")
    shown = racemap("--help", cwd=tmp_path)
    assert shown.returncode == 0 and "The racemap command line" in shown.stdout
    assert "``" not in shown.stdout


def test_an_openf1_that_does_not_answer_is_told_in_racemaps_lines(applied_db, tmp_path):
    """While a fetch is asked again, one warning says why and how to stop, then the failure's
    line: both as racemap's other lines. dbt's import (snowplow_tracker) configures Python's
    root logger, which printed the warning as ``WARNING:racemap.openf1.client:...``."""
    done = racemap(
        "run",
        "--database-url",
        applied_db.url,
        "--openf1-url",
        "http://127.0.0.1:9/v1",  # the discard port: refused at once
        "--seasons",
        "2024",
        "--var",
        f"as_of={AS_OF}",
        "--reports-dir",
        str(tmp_path),
        env_extra={"OPENF1_RETRY_SECONDS": "1"},
    )
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert lines[0] == (
        "racemap: OpenF1 meetings for 2024: ConnectError; asking again for up to 1 s"
        " (OPENF1_RETRY_SECONDS): Ctrl-C stops, --offline reads the bundled snapshot"
    ), done.stderr
    assert lines[1].startswith("racemap: OpenF1 meetings for 2024 unreachable for 1 s")
    assert len(lines) == 2, done.stderr
