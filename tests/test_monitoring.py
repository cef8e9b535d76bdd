"""Monitoring a season (issue 14): what changed since the last run, the webhook, racemap status
and the scheduled workflow, on a real PostgreSQL with OpenF1 served locally.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import shlex
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import yaml
from conftest import AS_OF, SECRET, lock_held, offline_args, query, run_pipeline

from racemap.cli import main as cli_main
from racemap.paths import PROJECT_DIR, SNAPSHOT_DIR
from racemap.settings import temporary_environ
from racemap.testing.openf1_server import serve

WORKFLOW = PROJECT_DIR / ".github" / "workflows" / "racemap-schedule.yml"


@contextmanager
def receiver():
    """A webhook receiver on 127.0.0.1: ``.url``, and ``.posts`` (path, body text) received."""
    posts: list[tuple[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            posts.append((self.path, body.decode("utf-8")))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/T0/B0/xyz"
    server.posts = posts
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def changes_csv(reports) -> list[dict]:
    with (reports / "changes.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def kinds(rows) -> set[tuple]:
    return {(r["kind"], r["race_id"] or None, str(r["meeting_key"] or "")) for r in rows}


def test_a_week_of_openf1_changes_is_listed_told_and_kept(demo_db, tmp_path, capsys):
    """Week 1: Saudi Arabia 2024 (meeting 1230) not yet published. Week 2: it is; the
    Australian race session (9488) moved by 2 h; Bahrain (1229, race 1121) called off after its
    race was mapped; pre-season testing (1228) no longer listed."""
    with serve(records_dir=[SNAPSHOT_DIR]) as server, receiver() as hook:
        held = {
            endpoint: [r for r in rows if r.get("meeting_key") == 1230]
            for endpoint, rows in server.records.items()
        }
        for endpoint in held:
            server.records[endpoint] = [
                r for r in server.records[endpoint] if r.get("meeting_key") != 1230
            ]
        live = {"offline": False, "openf1_url": server.base_url, "seasons": "2024", "refresh": True}
        first = run_pipeline(demo_db, tmp_path / "r1", **live)
        assert first.verdict == "attention"
        assert {row["race_id"] for row in first.attention} == {"1122"}  # Saudi: no meeting yet
        assert first.summary["changes"]["first_run"] is True
        assert first.summary["changes"]["list"] == [] and changes_csv(tmp_path / "r1") == []

        # A week later.
        for endpoint, rows in held.items():
            server.records[endpoint] += rows
        for session in server.records["sessions"]:
            if session["session_key"] == 9488:
                assert session["date_start"] == "2024-03-24T04:00:00+00:00"
                session["date_start"] = "2024-03-24T06:00:00+00:00"
        for meeting in server.records["meetings"]:
            if meeting["meeting_key"] == 1229:
                meeting["is_cancelled"] = True
                meeting["meeting_official_name"] = "CALLED OFF: " + meeting["meeting_official_name"]
        for endpoint in ("meetings", "sessions"):
            server.records[endpoint] = [
                r for r in server.records[endpoint] if r["meeting_key"] != 1228
            ]
        with_password = dataclasses.replace(demo_db, password=SECRET)
        second = run_pipeline(with_password, tmp_path / "r2", notify_url=hook.url, **live)

        assert (second.verdict, second.exit_code) == ("attention", 3)
        assert {row["race_id"] for row in second.attention} == {"1121"}
        rows = changes_csv(tmp_path / "r2")
        expected = {
            ("meeting_added", "1122", "1230"),
            ("race_mapped", "1122", "1230"),
            ("keys_set", "1122", "1230"),
            ("attention_resolved", "1122", "1230"),
            ("session_rescheduled", "1123", "1231"),
            ("meeting_called_off", "1121", "1229"),
            ("race_unmapped", "1121", "1229"),
            ("attention_new", "1121", ""),
            ("meeting_removed", None, "1228"),
            ("session_removed", None, "1228"),
        }
        assert kinds(rows) >= expected, kinds(rows) - expected
        extra = kinds(rows) - expected - {("session_added", "1122", "1230")}
        assert not extra
        moved = [r for r in rows if r["kind"] == "session_rescheduled"]
        assert [(m["session_key"], m["before"], m["after"]) for m in moved] == [
            ("9488", "2024-03-24 04:00:00+00", "2024-03-24 06:00:00+00")
        ]
        assert sum(r["kind"] == "session_added" for r in rows) == 5  # Saudi's five sessions
        assert sum(r["kind"] == "session_removed" for r in rows) == 3  # testing's three days

        summary = json.loads((tmp_path / "r2" / "summary.json").read_text())
        changes = summary["changes"]
        assert changes["previous_run_id"] == first.run_id and changes["total"] == len(rows)
        assert changes["counts"]["meeting_called_off"] == 1
        assert [c["kind"] for c in changes["list"]] == [r["kind"] for r in rows]
        report = (tmp_path / "r2" / "mapping_report.html").read_text(encoding="utf-8")
        assert "Since the last run" in report
        for word in ("meeting_called_off", "session_rescheduled", "meeting_added", "1121"):
            assert word in report
        assert report.index("Since the last run") < report.index("Coverage by season")

        # Kept in the database, to be asked later.
        assert query(
            demo_db,
            "select count(*) from racemap.run_changes where run_id = %s",
            (second.run_id,),
        ) == [(len(rows),)]
        assert query(
            demo_db, "select run_id, verdict, changes_count from racemap.runs order by finished_at"
        ) == [(first.run_id, "attention", 0), (second.run_id, "attention", len(rows))]

        # One webhook, naming the race needing attention; no password anywhere in it.
        assert len(hook.posts) == 1
        path, body = hook.posts[0]
        assert SECRET not in body
        message = json.loads(body)
        assert message["verdict"] == "attention" and message["run_id"] == second.run_id
        assert [a["race_id"] for a in message["attention"]] == ["1121"]
        assert "race 1121" in message["text"] and "called off" in message["text"]
        assert message["changes"]["counts"] == changes["counts"]
        assert message["reports_dir"] == str((tmp_path / "r2").resolve())

    capsys.readouterr()
    assert cli_main(["status", "--database-url", with_password.url]) == 3
    out, err = capsys.readouterr()
    assert second.run_id in out and "attention" in out
    assert "attention: race 1121" in err and "--allow-changes" in err
    assert "meeting_called_off: race 1121, meeting 1229" in out
    assert SECRET not in out + err
    assert cli_main(["status", "--database-url", demo_db.url, "--json"]) == 3
    state = json.loads(capsys.readouterr().out)
    assert state["verdict"] == "attention" and state["last_run"]["run_id"] == second.run_id
    assert state["changes"]["total"] == len(rows)
    assert set(state["freshness"]["endpoints"]) >= {"meetings", "sessions"}
    assert state["freshness"]["in_season"] is False  # 2024 is over: no window applies


def workflow_command() -> list[str]:
    """The `racemap run` command line of the scheduled workflow, as argv after `racemap`."""
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert {"schedule", "workflow_dispatch"} <= set(triggers)
    assert triggers["schedule"] == [{"cron": "0 6 * * 1"}]
    job = workflow["jobs"]["racemap-run"]
    assert job["env"]["DATABASE_URL"] == "${{ secrets.DATABASE_URL }}"
    uploads = [s for s in job["steps"] if "upload-artifact" in s.get("uses", "")]
    assert uploads and uploads[0]["if"] == "always()"
    lines = [
        line
        for step in job["steps"]
        for line in step.get("run", "").splitlines()
        if shlex.split(line)[:2] == [".venv/bin/racemap", "run"]
    ]
    assert len(lines) == 1
    return shlex.split(lines[0])[1:]


def test_the_scheduled_command_on_a_quiet_week_sends_nothing(applied_db, tmp_path, capsys):
    """The workflow's command line, through the CLI, on a database nothing changed in since its
    last run: ok, exit 0, no webhook."""
    argv = workflow_command() + offline_args(tmp_path / "reports")
    with (
        receiver() as hook,
        temporary_environ(DATABASE_URL=applied_db.url, RACEMAP_NOTIFY_URL=hook.url),
    ):
        code = cli_main(argv)
        assert code == 0, capsys.readouterr().err
        assert hook.posts == []
    summary = json.loads((tmp_path / "reports" / "summary.json").read_text())
    assert summary["verdict"] == "ok"
    assert summary["changes"]["first_run"] is False and summary["changes"]["total"] == 0
    assert "nothing changed since run" in capsys.readouterr().out
    assert cli_main(["status", "--database-url", applied_db.url]) == 0


def test_data_docs_keep_the_last_runs_of_this_database(tmp_path):
    """RACEMAP_DATA_DOCS_RUNS=3: the results and rendered pages of older runs are removed."""
    import os

    from racemap.checks.validate import prune_validations

    base = tmp_path / "gx" / "uncommitted"
    for i in range(6):
        run_id = f"2026110{i}T060000Z-abc{i}"
        for store in (base / "validations", base / "data_docs" / "local_site" / "validations"):
            for suite, name in (("raw_openf1_meetings", "raw"), ("races_openf1_keys", "mapping")):
                page = store / suite / f"{run_id}-{name}" / "20261101T060000Z" / "batch.json"
                page.parent.mkdir(parents=True)
                page.write_text("{}")
                os.utime(page.parent.parent, (1_000_000 + i, 1_000_000 + i))
    removed = prune_validations("20261106T060000Z-new-raw", tmp_path, keep_runs=3)
    assert sorted(removed) == [f"2026110{i}T060000Z-abc{i}" for i in range(4)]  # 2 kept + new
    for store in (base / "validations", base / "data_docs" / "local_site" / "validations"):
        assert sorted(p.name for p in store.glob("*/*")) == sorted(
            f"2026110{i}T060000Z-abc{i}-{n}" for i in (4, 5) for n in ("raw", "mapping")
        )


def test_a_webhook_that_cannot_be_reached_is_one_line_and_no_failure(tmp_path):
    from racemap.reporting.notify import notify

    logged = []
    with receiver() as hook:
        url = hook.url  # closed when the block ends: nothing listens there any more
    summary = {"run_id": "r1", "verdict": "failed", "error": "cannot connect", "attention": []}
    assert notify(url, summary, tmp_path, [SECRET], logged.append) is False
    assert len(logged) == 1 and "POST to http://127.0.0.1" in logged[0]
    assert "/hooks/" not in logged[0]  # the webhook's path is its secret
    quiet = {"run_id": "r2", "verdict": "ok", "attention": [], "changes": {"total": 0}}
    assert notify(url, quiet, tmp_path, [], logged.append) is False and len(logged) == 1


def test_the_webhook_body_holds_no_secret_in_any_form(tmp_path):
    """The secrets a run names (the database's password, OpenF1's account and password) are
    blanked from the body in each form a message can hold them: as they are, URL-encoded,
    JSON-escaped. The account was not among them, and a password holding a quote reached the
    body JSON-escaped around an encoded copy's blanking."""
    from racemap.reporting.notify import notify
    from racemap.settings import load_environment

    account, password = "ana@example.org", 'pa ss"word'
    with temporary_environ(OPENF1_USERNAME=account, OPENF1_PASSWORD=password):
        secrets = load_environment().secrets()
    error = (
        f"OpenF1 refused {account} ({quote(account)}); the password {password} {quote(password)}"
    )
    summary = {"run_id": "r1", "verdict": "failed", "error": error, "attention": []}
    with receiver() as hook:
        assert notify(hook.url, summary, tmp_path, secrets, lambda _line: None) is True
    ((_path, body),) = hook.posts
    assert json.loads(body)["error"] == "OpenF1 refused *** (***); the password *** ***"
    for secret in (account, password, quote(account, safe=""), "pa ss", json.dumps(password)):
        assert secret not in body
    # A secret as short as a word of the body's names: blanked in its strings, never its names.
    with temporary_environ(OPENF1_USERNAME="run", OPENF1_PASSWORD=password):
        secrets = load_environment().secrets()
    summary = {**summary, "error": "OpenF1 refused run"}
    with receiver() as hook:
        assert notify(hook.url, summary, tmp_path, secrets, lambda _line: None) is True
    ((_path, body),) = hook.posts
    sent = json.loads(body)
    assert sent["run_id"] == "r1" and sent["error"] == "OpenF1 refused ***"
    assert sent["text"].startswith("racemap *** r1: failed")  # the command's word, blanked too


def test_a_failed_sync_is_told_to_the_webhook(applied_db, tmp_path, capsys):
    """racemap sync had no webhook: an unattended sync that failed (or needed a person) told
    nobody, while the run before it did. Now ``--notify-url`` (or RACEMAP_NOTIFY_URL): one POST
    with ``command`` sync, the stage and the line; a sync that passes is quiet."""
    (tmp_path / "a-file").write_text("")
    unwritable = tmp_path / "a-file" / "reports"
    with receiver() as hook:
        args = ["sync", "--database-url", applied_db.url, "--offline", "--race-id", "1138"]
        args += ["--var", f"as_of={AS_OF}"]  # the copy's vars (conftest._parsed_state)
        assert cli_main([*args, "--reports-dir", str(unwritable), "--notify-url", hook.url]) == 1
        assert len(hook.posts) == 1
        path, body = hook.posts[0]
        sent = json.loads(body)
        assert path == "/hooks/T0/B0/xyz"
        assert (sent["command"], sent["verdict"], sent["stopped_at"]) == ("sync", "failed", "load")
        assert sent["error"].startswith(f"cannot write the reports in {unwritable}")
        assert sent["text"].startswith(f"racemap sync {sent['run_id']}: failed at load: cannot")
        assert "notify: sent the sync's message to http://127.0.0.1:" in capsys.readouterr().out

        with temporary_environ(RACEMAP_NOTIFY_URL=hook.url):  # the race's laps alone: enough
            passing = [*args, "--endpoints", "laps", "--reports-dir", str(tmp_path / "reports")]
            assert cli_main(passing) == 0
        assert len(hook.posts) == 1  # ok: nothing to tell

        # A sync that never got the run lock (a run holding it for too long) is told too.
        with lock_held(applied_db, "run"):
            waited = [*args, "--lock-timeout", "0.5", "--notify-url", hook.url]
            assert cli_main([*waited, "--reports-dir", str(tmp_path / "reports")]) == 1
        assert len(hook.posts) == 2
        sent = json.loads(hook.posts[1][1])
        assert (sent["command"], sent["verdict"], sent["stopped_at"]) == ("sync", "failed", None)
        assert sent["error"].startswith(f"another racemap run holds {applied_db.display}: ")
