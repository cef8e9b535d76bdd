"""Every run's verdict tells the truth: ok (0), attention (3), failed (1), usage (2).

Real rows of the bundled data on a real PostgreSQL: the shared mapped demo is copied per test
(``applied_db``), the OpenF1 states that change between runs are served by the local OpenF1.
"""

from __future__ import annotations

import csv
import json
import shutil

import pytest
from conftest import keys, mapping_updates, offline_args, query, run_pipeline

from racemap.cli import main as cli_main
from racemap.errors import RacemapError
from racemap.mapping.apply import restore_last_apply
from racemap.paths import PROJECT_DIR, SNAPSHOT_DIR
from racemap.reporting.reports import attention_line
from racemap.settings import RacesTable
from racemap.testing.openf1_server import serve

RACES = RacesTable("public", "races", "id")


def set_keys(db, assignments: dict) -> None:
    """Set races' keys by hand, in one transaction (cleared first: keys may move between them)."""
    with db.transaction() as conn, conn.cursor() as cur:
        for race_id in assignments:
            cur.execute(
                "update public.races set openf1_meeting_key = null, openf1_session_key = null"
                " where id = %s",
                (race_id,),
            )
        for race_id, (meeting, session) in assignments.items():
            cur.execute(
                "update public.races set openf1_meeting_key = %s, openf1_session_key = %s"
                " where id = %s",
                (meeting, session, race_id),
            )


def attention_of(result) -> dict:
    return {row["race_id"]: row for row in result.attention}


def test_the_demo_is_ok(mapped_demo):
    _db, result, reports = mapped_demo
    assert (result.verdict, result.exit_code, result.attention) == ("ok", 0, [])
    summary = json.loads((reports / "summary.json").read_text())
    assert summary["verdict"] == "ok" and summary["attention"] == []


# Names are user input: escaped in HTML; on the console, a line break or a terminal's escape
# sequence in one is written as its escape, and the line stays one line.
MADRID = "Madrid Grand Prix <img src=x onerror=alert(1)>\n\x1b]0;pwned\x07"
MADRID_SHOWN = "Madrid Grand Prix <img src=x onerror=alert(1)>\\n\\x1b]0;pwned\\x07"


def add_madrid(db) -> None:
    """A race at a circuit the map lacks: an application naming Madrid's circuit `madrid` (the
    circuit map, like Jolpica, says `madring`)."""
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(
            "insert into public.circuits (id, circuit_ref, name, location, country)"
            " values (81, 'madrid', 'Madring', 'Madrid', 'Spain')"
        )
        cur.execute(
            "insert into public.races (id, year, round, circuit_id, name, date, time)"
            " values ('madrid-2025', 2025, 25, 'madrid', %s, '2025-09-14', '13:00:00')",
            (MADRID,),
        )


def test_a_circuit_missing_from_the_map_needs_attention_until_a_reviewed_skip(
    applied_db, tmp_path, capsys, monkeypatch
):
    add_madrid(applied_db)
    code = cli_main(["run", "--database-url", applied_db.url, *offline_args(tmp_path / "reports")])
    err = capsys.readouterr().err
    assert code == 3
    assert (
        f"attention: race madrid-2025 ({MADRID_SHOWN}, 2025): no_circuit_mapping: the race's "
        "circuit is not in seeds/circuit_map.csv — add madrid to seeds/circuit_map.csv"
    ) in err
    assert "\x1b" not in err and "\x07" not in err
    summary = json.loads((tmp_path / "reports" / "summary.json").read_text())
    assert summary["verdict"] == "attention"
    assert [(a["race_id"], a["kind"], a["reason"]) for a in summary["attention"]] == [
        ("madrid-2025", "unmapped", "no_circuit_mapping")
    ]
    # Shown first in the mapping report, escaped (the application's tables are user input).
    html = (tmp_path / "reports" / "mapping_report.html").read_text()
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert html.index("Needs attention") < html.index("Coverage by season")
    for page in (tmp_path / "reports" / "validation").rglob("*.html"):
        assert "<img src=x" not in page.read_text(), page
    # Coverage counts it: 24 of the 25 races of 2025 are mapped.
    assert summary["coverage"]["2025"]["coverage"] == pytest.approx(0.96)
    mapping = [c for c in summary["checkpoints"] if c["name"] == "mapping"][0]
    assert not mapping["success"] and mapping["failed"] == []
    assert any("races_needing_attention" in line for line in mapping["attention"])
    # racemap validate follows the same rule.
    code = cli_main(
        ["validate", "--database-url", applied_db.url, "--reports-dir", str(tmp_path / "v")]
    )
    assert code == 3 and "attention: race madrid-2025" in capsys.readouterr().err

    # A reviewed skip in seeds/mapping_overrides.csv (of a copy of the project) accepts it.
    project = tmp_path / "project"
    for name in ("models", "macros", "seeds", "snapshots", "tests/dbt"):
        shutil.copytree(PROJECT_DIR / name, project / name)
    for name in ("dbt_project.yml", "profiles.yml"):
        shutil.copyfile(PROJECT_DIR / name, project / name)
    with (project / "seeds" / "mapping_overrides.csv").open("a") as handle:
        handle.write("madrid-2025,skip,,,no_circuit_mapping,reviewer,our own circuit id\n")
    monkeypatch.setenv("RACEMAP_DBT_PROJECT_DIR", str(project))
    result = run_pipeline(applied_db, tmp_path / "reviewed")
    assert (result.verdict, result.exit_code) == ("ok", 0)
    assert query(
        applied_db, "select reason from racemap.unmapped_races where race_id = 'madrid-2025'"
    ) == [("no_circuit_mapping",)]


def test_keys_of_a_called_off_meeting_are_stale(applied_db, tmp_path):
    """Bahrain 2024 (race 1121) mapped to meeting 1229, which OpenF1 then calls off."""
    db = applied_db  # Bahrain 2024 mapped by an offline run of the same records
    assert keys(db, "1121") == (1229, 9472)
    with serve(records_dir=[SNAPSHOT_DIR]) as server:
        live = {"offline": False, "openf1_url": server.base_url, "seasons": "2024"}
        for meeting in server.records["meetings"]:
            if meeting["meeting_key"] == 1229:
                meeting["is_cancelled"] = True
                meeting["meeting_official_name"] = "CALLED OFF: " + meeting["meeting_official_name"]
        held = run_pipeline(db, tmp_path / "held", refresh=True, **live)
        assert (held.verdict, held.exit_code) == ("attention", 3)
        row = attention_of(held)["1121"]
        assert row["kind"] == "stale_keys" and "called off" in row["detail"]
        assert "--allow-changes" in row["action"]
        updates = mapping_updates(tmp_path / "held", "action", "status")
        assert updates["1121"] == ("clear", "held_back")
        assert keys(db, "1121") == (1229, 9472)  # never cleared silently

        cleared = run_pipeline(db, tmp_path / "cleared", refresh=True, allow_changes=True, **live)
    assert (cleared.verdict, cleared.exit_code) == ("ok", 0)
    assert keys(db, "1121") == (None, None)
    assert query(db, "select reason from racemap.race_openf1_mapping where race_id = '1121'") == [
        ("cancelled",)
    ]
    assert query(
        db,
        "select action, meeting_key_before, meeting_key_after from racemap.mapping_history"
        " where run_id = %s",
        (cleared.run_id,),
    ) == [("clear", 1229, None)]


def test_a_swap_and_a_chain_are_repaired_in_one_run(applied_db, tmp_path):
    """Bahrain and Saudi Arabia 2023 (1121, 1122) hold each other's keys; British GP 2025's keys
    (1277/9947) are set by hand on the 2024 British GP (1132), which leaves 1156 unmapped."""
    bahrain, saudi = keys(applied_db, "1121"), keys(applied_db, "1122")
    british_2024 = keys(applied_db, "1132")
    set_keys(
        applied_db,
        {"1121": saudi, "1122": bahrain, "1156": (None, None), "1132": (1277, 9947)},
    )

    held = run_pipeline(applied_db, tmp_path / "held")
    assert (held.verdict, held.exit_code) == ("attention", 3)
    assert {r: a["kind"] for r, a in attention_of(held).items()} == {
        "1121": "stale_keys",
        "1122": "stale_keys",
        "1132": "stale_keys",
        "1156": "conflict",
    }
    assert "held by race 1132" in attention_of(held)["1156"]["detail"]
    assert mapping_updates(tmp_path / "held", "action", "status") == {
        "1121": ("change", "held_back"),
        "1122": ("change", "held_back"),
        "1132": ("change", "held_back"),
        "1156": ("fill", "conflict"),
    }
    assert keys(applied_db, "1121") == saudi  # nothing written without --allow-changes

    repaired = run_pipeline(applied_db, tmp_path / "fixed", allow_changes=True)
    assert (repaired.verdict, repaired.exit_code, repaired.attention) == ("ok", 0, [])
    assert (keys(applied_db, "1121"), keys(applied_db, "1122")) == (bahrain, saudi)
    assert keys(applied_db, "1132") == british_2024 and keys(applied_db, "1156") == (1277, 9947)
    assert mapping_updates(tmp_path / "fixed", "action", "status") == {
        "1121": ("change", "applied"),
        "1122": ("change", "applied"),
        "1132": ("change", "applied"),
        "1156": ("fill", "applied"),
    }
    # Every change is in the history, and restorable: the state before that apply.
    restored = restore_last_apply(applied_db, "t-restore", RACES)
    assert restored.restored == 4
    assert (keys(applied_db, "1121"), keys(applied_db, "1122")) == (saudi, bahrain)
    assert keys(applied_db, "1132") == (1277, 9947) and keys(applied_db, "1156") == (None, None)


def test_one_bad_row_never_stops_the_others(fresh_db, tmp_path):
    """An application table with text dates and times and no name column: a missing date, a
    time 'TBC', a duplicated id, a row without an id, and a time with an explicit offset among
    the real 2024 races. The row without an id vanished: in no report, no count, no attention."""
    from conftest import demo_races

    demo_races(fresh_db)
    with fresh_db.transaction() as conn, conn.cursor() as cur:
        cur.execute("""
            create schema app;
            create table app.grand_prix (
                gp_id integer, track text, race_day text, start_utc text,
                openf1_meeting_key integer unique, openf1_session_key integer unique);
            insert into app.grand_prix (gp_id, track, race_day, start_utc)
            select cast(id as integer), circuit_id, cast(date as text), cast(time as text)
            from public.races where year = 2024;
            update app.grand_prix set race_day = null where gp_id = 1128;     -- Monaco
            update app.grand_prix set start_utc = 'TBC' where gp_id = 1129;   -- Canada
            insert into app.grand_prix (gp_id, track, race_day, start_utc)
            values (1130, 'catalunya', '2024-06-23', '13:00:00');
            update app.grand_prix set start_utc = '18:00:00+03:00' where gp_id = 1121;  -- 15:00Z
            insert into app.grand_prix (gp_id, track, race_day, start_utc)
            values (null, 'losail', '2024-12-01', '16:00:00');
        """)
    variables = {
        "races_schema": "app",
        "races_table": "grand_prix",
        "race_id_column": "gp_id",
        "race_circuit_column": "track",
        "race_name_column": "",  # no name column: the reports show the id
        "race_date_column": "race_day",
        "race_time_column": "start_utc",
    }
    result = run_pipeline(fresh_db, tmp_path / "reports", seasons="2024", variables=variables)
    assert (result.verdict, result.exit_code) == ("attention", 3)
    invalid = {
        r: a["detail"] for r, a in attention_of(result).items() if a["reason"] == "invalid_race"
    }
    assert invalid == {
        "1128": "its row is unusable: no date",
        "1129": "its row is unusable: unreadable time 'TBC'",
        "1130": "its row is unusable: duplicate id (2 rows)",
        None: "its row is unusable: no id (circuit losail, date '2024-12-01', time '16:00:00')",
    }
    assert set(attention_of(result)) == set(invalid)
    assert attention_of(result)["1128"]["race_name"] == "1128"
    assert attention_line(attention_of(result)[None]) == (
        "a row without an id (no name, 2024): its row is unusable: no id (circuit losail, date"
        " '2024-12-01', time '16:00:00') — fix the race's row in the races table (no id)"
    )
    assert result.summary["mapped"] == 21  # the 24 races of 2024 but the three
    # 25 rows: the 24 races (1130's two rows one race) and the row without an id
    assert result.summary["races"] == 25
    assert result.summary["unmapped_by_reason"]["invalid_race"] == 4
    with (tmp_path / "reports" / "unmapped_races.csv").open() as handle:
        unmapped = [row for row in csv.DictReader(handle) if row["reason"] == "invalid_race"]
    assert sorted((r["race_id"], r["detail"], r["circuit_id"]) for r in unmapped) == [
        ("", "no id", "losail"),
        ("1128", "no date", "monaco"),
        ("1129", "unreadable time 'TBC'", "villeneuve"),
        ("1130", "duplicate id (2 rows)", "catalunya"),
    ]
    # The explicit offset is honoured: Bahrain 2024 at 18:00+03:00 is 15:00 UTC, delta 0.
    assert query(
        fresh_db,
        "select meeting_key, session_key, delta_hours from racemap.race_openf1_mapping"
        " where race_id = '1121'",
    ) == [(1229, 9472, 0)]


def test_a_tolerance_below_a_day_runs_without_unit_tests(applied_db, tmp_path):
    result = run_pipeline(
        applied_db, tmp_path / "reports", variables={"match_tolerance_hours": "20"}
    )
    # Las Vegas 2024: Ergast's date is a day early (+24 h), so 20 h finds nothing.
    assert result.exit_code == 3
    row = attention_of(result)["1142"]
    assert (row["kind"], row["reason"]) == ("unmapped", "no_meeting")
    assert "yet it holds meeting 1250" in row["detail"]
    assert set(attention_of(result)) == {"1142"}


@pytest.mark.parametrize(
    ("var", "message"),
    [
        ("match_tolerance_hours=abc", "give a number of hours from 1 to 96"),
        ("match_tolerance_hours=200", "give a number of hours from 1 to 96"),
        ("coverage_threshold=2", "give a share between 0 and 1"),
        ("as_of=yesterday", "give an ISO date or timestamp"),
        ("race_tolerance=3", "unknown var race_tolerance: the vars are as_of, coverage_threshold"),
    ],
)
def test_a_bad_var_is_a_usage_error(var, message, capsys, tmp_path):
    code = cli_main(["run", "--offline", "--var", var, "--reports-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())  # nothing ran, nothing written


def test_a_failed_run_leaves_no_earlier_report_looking_current(
    applied_db, mapped_template, tmp_path, monkeypatch
):
    reports = tmp_path / "reports"
    # The published set of the run that mapped this database (an ok run), copied as it is.
    shutil.copytree(mapped_template[2], reports, symlinks=True)
    assert json.loads((reports / "summary.json").read_text())["verdict"] == "ok"
    assert (reports / "unmapped_races.csv").is_file()

    monkeypatch.setenv("OPENF1_RETRY_SECONDS", "1")
    with pytest.raises(RacemapError, match="unreachable"):
        run_pipeline(
            applied_db,
            reports,
            offline=False,
            openf1_url="http://127.0.0.1:9/v1",  # nothing listens on the discard port
            seasons="2025",
        )
    summary = json.loads((reports / "summary.json").read_text())
    assert summary["verdict"] == "failed" and summary["stopped_at"] == "load"
    assert "unreachable" in summary["error"]
    left = {p.name for p in reports.iterdir() if not p.name.startswith(".")} - {"current"}
    assert "summary.json" in left and left <= {"notebooks", "summary.json"}  # nothing older
    # The database remembers the failed run, and racemap status reports it (exit 1).
    assert query(
        applied_db, "select verdict from racemap.runs where run_id = %s", (summary["run_id"],)
    ) == [("failed",)]
    assert cli_main(["status", "--database-url", applied_db.url]) == 1


def test_one_rule_decides_every_verdict():
    from racemap import verdict

    assert verdict.decide() == "ok"
    assert verdict.decide([], [{"race_id": "1"}]) == "attention"
    assert verdict.decide(["raw failed"], [{"race_id": "1"}]) == "failed"
    assert [verdict.exit_code(v) for v in verdict.VERDICTS] == [0, 3, 1]
    assert (verdict.EXIT_USAGE, verdict.EXIT_SIGINT, verdict.EXIT_SIGTERM) == (2, 130, 143)
    # racemap status: no run recorded or the last one failed comes first.
    assert verdict.status_verdict(None, [], [], 0) == "failed"
    assert verdict.status_verdict("failed", [], [], 0) == "failed"
    assert verdict.status_verdict("ok", [], [], 0) == "ok"
    assert verdict.status_verdict("ok", [], ["meetings"], 0) == "attention"
    assert verdict.status_verdict("ok", [], [], 70) == "attention"
    # The last racemap sync: failed fails the status; ok or attention leaves it to the rest.
    assert verdict.status_verdict("ok", [], [], 0, "failed") == "failed"
    assert verdict.status_verdict("ok", [], [], 0, "attention") == "ok"


def test_status_is_not_ok_while_mapped_races_hold_no_keys(applied_db, capsys):
    """Races mapped but holding no keys are attention, each group said with why: keys cleared
    outside racemap (naming the run that set them), then the other 69 after racemap restore."""
    url = applied_db.url
    assert cli_main(["status", "--database-url", url]) == 0
    capsys.readouterr()
    with applied_db.transaction() as conn, conn.cursor() as cur:
        cur.execute("select race_id from racemap.mapping_history order by history_id limit 1")
        (race_id,) = cur.fetchone()
        cur.execute(
            "update public.races set openf1_meeting_key = null, openf1_session_key = null"
            " where id::text = %s",
            (race_id,),
        )
    assert cli_main(["status", "--database-url", url]) == 3
    err = capsys.readouterr().err
    assert "attention: 1 race(s) are mapped but hold no keys (cleared outside racemap" in err
    assert cli_main(["restore", "--database-url", url]) == 0
    capsys.readouterr()
    assert cli_main(["status", "--database-url", url]) == 3
    err = capsys.readouterr().err
    # The restore skips the race cleared by hand (it no longer holds what the apply wrote).
    assert "attention: 69 race(s) are mapped but hold no keys (restored by run " in err
    assert "attention: 1 race(s) are mapped but hold no keys (cleared outside racemap" in err
    assert "the next racemap run applies their mapping" in err
    assert cli_main(["status", "--database-url", url, "--json"]) == 3
    state = json.loads(capsys.readouterr().out)
    assert (state["verdict"], state["unapplied"]) == ("attention", 70)
    why = [(g["why"], g["races"]) for g in state["unapplied_why"]]
    assert why == [("cleared_by_hand", 1), ("restored", 69)]
