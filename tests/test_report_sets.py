"""A run's reports are published whole, per database, and only once they are in place.

Real runs (offline, the bundled data) on copies of the shared mapped demo: a report folder a run
cannot write is a failed run everywhere (exit code, summary.json where it can be written,
racemap.runs, ``racemap status``); the set is swapped in at once (the link ``current``); the
folders of killed runs are removed by the next run; two databases with the default reports
folder each keep their own set, and ``racemap validate`` writes into its own database's.
"""

from __future__ import annotations

import json
import os
import shutil

from conftest import AS_OF, database_copy, query

from racemap.cli import main as cli_main
from racemap.paths import DEFAULT_REPORTS_DIR


def run_cli(db, *extra: str) -> int:
    return cli_main(
        [
            "run",
            "--offline",
            "--seasons",
            "2023-2025",
            "--var",
            f"as_of={AS_OF}",
            "--database-url",
            db.url,
            *extra,
        ]
    )


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("racemap:")]
    assert len(lines) == 1 and "Traceback" not in err and "unexpected" not in err, err
    return lines[0]


def last_run(db) -> tuple:
    return query(db, "select verdict, stopped_at from racemap.runs order by started_at desc")[0]


def test_a_reports_folder_it_cannot_write_is_a_failed_run(applied_db, tmp_path, capsys):
    if os.geteuid() == 0:  # root writes through any mode: a folder under a file cannot be made
        (tmp_path / "a-file").write_text("not a folder")
        reports = tmp_path / "a-file" / "reports"
    else:
        reports = tmp_path / "read-only"
        reports.mkdir()
        reports.chmod(0o555)
    try:
        assert run_cli(applied_db, "--reports-dir", str(reports)) == 1
    finally:
        if reports.is_dir():
            reports.chmod(0o755)
    line = one_error_line(capsys)
    assert f"cannot write the reports in {reports}" in line and "--reports-dir" in line
    assert last_run(applied_db) == ("failed", "start_database")
    assert cli_main(["status", "--database-url", applied_db.url]) == 1


def test_a_set_that_cannot_be_published_fails_the_run(applied_db, tmp_path, capsys):
    reports = tmp_path / "reports"
    (reports / "current").mkdir(parents=True)  # not racemap's: it cannot swap the set in
    (reports / "current" / "mine.txt").write_text("keep")
    assert run_cli(applied_db, "--reports-dir", str(reports)) == 1
    line = one_error_line(capsys)
    assert "is not racemap's link" in line and "move it away" in line
    assert last_run(applied_db) == ("failed", "publish")
    assert cli_main(["status", "--database-url", applied_db.url]) == 1
    assert (reports / "current" / "mine.txt").read_text() == "keep"
    assert not (reports / "summary.json").exists()  # no verdict published as this run's


def test_sets_are_whole_and_per_database(applied_db, mapped_template, capsys):
    first = DEFAULT_REPORTS_DIR / applied_db.dbname
    with database_copy(mapped_template[0]) as other:
        second = DEFAULT_REPORTS_DIR / other.dbname
        try:
            # A killed run's folder is removed by the next run.
            (first / ".run-killed").mkdir(parents=True)
            (first / ".run-killed" / "summary.json").write_text("{}")
            assert run_cli(applied_db) == 0
            out = capsys.readouterr().out
            assert f"reports in {first}" in out
            a = json.loads((first / "summary.json").read_text())
            assert (first / "current").is_symlink()
            assert sorted(p.name for p in first.glob(".run-*")) == [f".run-{a['run_id']}"]
            assert (first / "mapping_report.html").is_file()
            assert (first / "validation" / "index.html").is_file()

            assert run_cli(other) == 0
            b = json.loads((second / "summary.json").read_text())
            assert b["run_id"] != a["run_id"] and other.dbname in b["database"]
            # The other database's run replaced nothing of the first's.
            assert json.loads((first / "summary.json").read_text())["run_id"] == a["run_id"]
            assert (first / "mapping_report.html").is_file()

            # validate: its own database's set, whole (the run's reports kept beside it).
            docs = (first / "validation" / "index.html").stat().st_ino
            assert cli_main(["validate", "--database-url", other.url]) == 0
            assert (first / "validation" / "index.html").stat().st_ino == docs
            assert json.loads((second / "summary.json").read_text())["run_id"] == b["run_id"]
            assert (second / "validation" / "index.html").is_file()
            assert (second / "mapping_report.html").is_file()
            assert len(list(second.glob(".run-*"))) == 1

            # The first database reached by another host name: its own run is the published one
            # (its runs are in the set), and validate takes the folder as before.
            (first / ".database").write_text(f"localhost.example:5432/{applied_db.dbname}\n")
            assert cli_main(["validate", "--database-url", applied_db.url]) == 0
            assert json.loads((first / "summary.json").read_text())["run_id"] == a["run_id"]
        finally:
            shutil.rmtree(first, ignore_errors=True)
            shutil.rmtree(second, ignore_errors=True)


def test_the_default_folder_is_decided_by_what_the_user_gave(monkeypatch):
    """Starting the embedded database exports its own DATABASE_URL (for the kernels): a command
    on the embedded database still writes to reports/embedded/, not reports/postgres/."""
    from argparse import Namespace

    from racemap.cli import _database_reports_dir
    from racemap.reporting.reports import database_reports_dir
    from racemap.settings import load_environment

    monkeypatch.delenv("DATABASE_URL", raising=False)
    args = Namespace(reports_dir=None, database_url=None, environment=load_environment())
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    assert _database_reports_dir(args) == DEFAULT_REPORTS_DIR / "embedded"
    assert database_reports_dir(None) == DEFAULT_REPORTS_DIR / "embedded"
    given = "postgresql://app@db.example:5432/f1_app"
    assert database_reports_dir(given) == DEFAULT_REPORTS_DIR / "f1_app"


def test_a_database_of_the_same_name_elsewhere_never_takes_the_folder(
    applied_db, capsys, monkeypatch
):
    """reports/<database name>/ is named by the name alone: another server's database of the
    same name (here: the folder's set is of db.example's, a run this database never made) would
    replace that set and carry its race pages into its own. It is refused in one line, before
    anything is written, by a run, a sync and validate; a failed run publishes nothing there. (The
    same database reached by another host name, whose runs are in the set, takes it as before:
    test_sets_are_whole_and_per_database.)"""
    folder = DEFAULT_REPORTS_DIR / applied_db.dbname
    theirs = folder / ".run-theirs"
    try:
        (theirs / "races").mkdir(parents=True)
        (theirs / "races" / "9999.html").write_text("<p>their page</p>")
        summary = {
            "run_id": "theirs",
            "database": f"postgresql://app@db.example/{applied_db.dbname}",
        }
        (theirs / "summary.json").write_text(json.dumps(summary))
        (folder / "current").symlink_to(theirs.name)
        (folder / ".database").write_text(f"db.example:5432/{applied_db.dbname}\n")
        for args in (
            ["--offline", "--seasons", "2024", "--database-url", applied_db.url],
            ["--database-url", applied_db.url],
        ):
            command = "sync" if "--offline" in args else "validate"
            assert cli_main([command, *args]) == 1
            line = one_error_line(capsys)
            assert str(folder) in line and "db.example:5432" in line and "--reports-dir" in line
        assert run_cli(applied_db) == 1
        line = one_error_line(capsys)
        assert str(folder) in line and "--reports-dir" in line
        assert os.readlink(folder / "current") == theirs.name  # their set, untouched
        assert json.loads((folder / "current" / "summary.json").read_text())["run_id"] == "theirs"
        assert (folder / "current" / "races" / "9999.html").is_file()
        assert sorted(p.name for p in folder.glob(".run-*")) == [theirs.name]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_run_stopped_after_its_report_publishes_no_report_of_a_verdict(
    applied_db, tmp_path, capsys, monkeypatch
):
    """A run interrupted once its mapping report is written (here while it publishes: SIGTERM
    in the last second) is a failed run: its set says so in summary.json and holds no mapping
    report, whose page and notebook said the verdict of a run that had finished."""
    from racemap.reporting import reports

    publish = reports.ReportSet.publish
    calls = []

    def interrupted_once(self):
        calls.append(self.dir)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return publish(self)

    monkeypatch.setattr(reports.ReportSet, "publish", interrupted_once)
    folder = tmp_path / "reports"
    assert run_cli(applied_db, "--reports-dir", str(folder)) == 130
    assert one_error_line(capsys) == "racemap: interrupted during publish"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["verdict"] == "failed" and summary["stopped_at"] == "publish"
    assert not (folder / "mapping_report.html").exists()
    assert not (folder / "current" / "mapping_report.html").exists()
    assert not (folder / "notebooks" / "mapping_report.ipynb").exists()
    assert (folder / "notebooks" / "load_openf1.ipynb").is_file()  # the load's record stays
    assert last_run(applied_db) == ("failed", "publish")
