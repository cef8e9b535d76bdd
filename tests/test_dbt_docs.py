"""racemap.mapping.dbt.docs: the dbt docs site in the reports, with the lineage from sources
to marts."""

from __future__ import annotations

import json
import re

import pytest
from conftest import AS_OF, demo_races

from racemap.errors import RacemapError
from racemap.mapping import dbt
from racemap.openf1.loader import ensure_raw_tables

MART = "model.racemap.race_openf1_mapping"


def _ancestors(parent_map: dict, node: str) -> set[str]:
    seen: set[str] = set()
    todo = [node]
    while todo:
        for parent in parent_map.get(todo.pop(), []):
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    return seen


def test_docs_site_in_reports_with_lineage_and_catalog(fresh_db, tmp_path, monkeypatch):
    demo_races(fresh_db)
    with fresh_db.transaction() as conn:
        ensure_raw_tables(conn)
    for key, value in fresh_db.libpq_env().items():
        monkeypatch.setenv(key, value)
    variables = {"as_of": AS_OF}
    dbt.migrate(variables)
    dbt.build(variables)

    reports = tmp_path / "reports"
    with fresh_db.transaction() as conn:
        index, generated = dbt.docs(reports, variables, conn)

    site = reports / "dbt-docs"
    assert index == site / "index.html" and generated
    # Only the site: no compiled SQL, run results or partial-parse files among the reports.
    assert sorted(p.name for p in site.iterdir()) == ["catalog.json", "index.html", "manifest.json"]
    html = index.read_text()
    assert MART in html and "openf1_meetings" in html  # static: manifest and catalog inside

    manifest = json.loads((site / "manifest.json").read_text())
    lineage = _ancestors(manifest["parent_map"], MART)
    assert {
        "source.racemap.openf1.openf1_meetings",
        "source.racemap.openf1.openf1_sessions",
        "source.racemap.app.races",
        "seed.racemap.circuit_map",
        "seed.racemap.mapping_overrides",
        "model.racemap.stg_app__races",
        "model.racemap.int_races_matched_to_meetings",
    } <= lineage

    catalog = json.loads((site / "catalog.json").read_text())
    assert "race_id" in catalog["nodes"][MART]["columns"]
    assert "meeting_key" in catalog["sources"]["source.racemap.openf1.openf1_meetings"]["columns"]
    assert fresh_db.password is None or fresh_db.password not in html


def test_every_built_column_is_described(mapped_demo):
    """The catalog (what the database really holds after a run) against the docs: every column
    of every model and snapshot has a description in the yml beside it. scripts/check_dbt_docs.py
    checks the manifest at lint time; only the catalog sees columns a yml forgot."""
    _db, _result, reports = mapped_demo
    site = reports / "dbt-docs"
    manifest = json.loads((site / "manifest.json").read_text())
    catalog = json.loads((site / "catalog.json").read_text())
    undescribed = []
    for unique_id, built in catalog["nodes"].items():
        if not unique_id.startswith(("model.", "snapshot.")):
            continue
        described = {
            name.lower()
            for name, column in manifest["nodes"][unique_id]["columns"].items()
            if (column.get("description") or "").strip()
        }
        undescribed += [
            f"{unique_id}.{name}" for name in built["columns"] if name.lower() not in described
        ]
    assert undescribed == []


def test_docs_are_generated_again_only_when_the_project_vars_or_catalog_change(
    fresh_db, tmp_path, monkeypatch
):
    """The site is kept beside dbt's target with a key: a second run with nothing changed copies
    it; another var, or a column the catalog did not have, generates it again."""
    demo_races(fresh_db)
    with fresh_db.transaction() as conn:
        ensure_raw_tables(conn)
    for key, value in fresh_db.libpq_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "state" / "target"))
    variables = {"as_of": AS_OF}
    dbt.migrate(variables)
    dbt.build(variables)

    def docs(reports, variables):
        with fresh_db.transaction() as conn:
            return dbt.docs(tmp_path / reports, variables, conn)

    assert docs("first", variables)[1] is True
    index, generated = docs("second", variables)
    assert generated is False
    assert index.read_bytes() == (tmp_path / "first" / "dbt-docs" / "index.html").read_bytes()
    assert docs("other-vars", {"as_of": "2026-01-01"})[1] is True
    assert docs("same-again", {"as_of": "2026-01-01"})[1] is False
    with fresh_db.transaction() as conn, conn.cursor() as cur:
        cur.execute("alter table public.races add column notes text")
    index, generated = docs("new-column", {"as_of": "2026-01-01"})
    assert generated is True
    catalog = json.loads((index.parent / "catalog.json").read_text())
    assert "notes" in catalog["sources"]["source.racemap.app.races"]["columns"]


def test_a_build_writes_its_run_results_and_an_info_log_but_no_manifest(
    fresh_db, tmp_path, monkeypatch, capsys
):
    """dbt.migrate, dbt.parse, dbt.build and dbt.build_race_data leave manifest.json to the
    docs (writing it was half of a warm parse and a tenth of a warm build); each build's
    run_results.json is written, a failed build's too; dbt.log is at info level unless
    DBT_LOG_LEVEL_FILE says otherwise. A failed build is one line with each node's cause and
    the log's path, and dbt prints nothing of its own."""
    demo_races(fresh_db)
    for key, value in fresh_db.libpq_env().items():
        monkeypatch.setenv(key, value)
    target, logs = tmp_path / "target", tmp_path / "logs"
    monkeypatch.setenv("DBT_TARGET_PATH", str(target))
    monkeypatch.setenv("DBT_LOG_PATH", str(logs))
    variables = {"as_of": AS_OF}
    dbt.migrate(variables)
    assert not (target / "manifest.json").exists()

    # No raw tables yet: the models reading them fail, and the build says so.
    with pytest.raises(RacemapError, match="dbt build failed") as failed_build:
        dbt.build(variables, dbt.parse(variables))
    message = str(failed_build.value)
    assert "\n" not in message
    assert re.search(r': relation "raw\.openf1_\w+" does not exist; ', message), message
    assert message.endswith(f"(in full: {logs / 'dbt.log'})"), message
    assert "Database Error" not in message
    assert capsys.readouterr().out == ""
    failed = json.loads((target / "run_results.json").read_text())
    assert "error" in {result["status"] for result in failed["results"]}

    with fresh_db.transaction() as conn:
        ensure_raw_tables(conn)
    dbt.build(variables, dbt.parse(variables))
    built = json.loads((target / "run_results.json").read_text())
    assert built["args"]["which"] == "build" and len(built["results"]) > 100
    assert {result["status"] for result in built["results"]} <= {"success", "pass"}
    assert not (target / "manifest.json").exists()
    # racemap sync's build: the race data marts and their checks (empty before any sync).
    dbt.build_race_data(variables)
    race_data = json.loads((target / "run_results.json").read_text())
    built_ids = {result["unique_id"] for result in race_data["results"]}
    assert "model.racemap.race_laps" in built_ids
    assert "model.racemap.race_openf1_mapping" not in built_ids
    assert not (target / "manifest.json").exists()
    log = (logs / "dbt.log").read_text()
    assert "[info ]" in log and "[debug]" not in log

    monkeypatch.setenv("DBT_LOG_LEVEL_FILE", "debug")
    dbt.parse(variables)
    assert "[debug]" in (logs / "dbt.log").read_text()
