"""racemap.mapping.dbt.docs: the dbt docs site in the reports, with the lineage from sources
to marts.

The tests of dbt's builds and docs share one database of the module (``built``), built once as
a first run builds it, with its own dbt target and logs: the checks of each step's artefacts
read what the fixture kept of them; only test_docs_are_generated_again_... changes the database
(a column of its own) and the kept site after the first docs, which no other test reads."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
from types import SimpleNamespace

import pytest
from conftest import AS_OF, create_database, demo_races, drop_database

from racemap.errors import RacemapError
from racemap.mapping import dbt
from racemap.openf1.loader import ensure_raw_tables

MART = "model.racemap.race_openf1_mapping"
VARIABLES = {"as_of": AS_OF}


def _ancestors(parent_map: dict, node: str) -> set[str]:
    seen: set[str] = set()
    todo = [node]
    while todo:
        for parent in parent_map.get(todo.pop(), []):
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    return seen


def _use(monkeypatch, built) -> None:
    """dbt in this process on the module's database, its target and its logs."""
    for key, value in built.db.libpq_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DBT_TARGET_PATH", str(built.target))
    monkeypatch.setenv("DBT_LOG_PATH", str(built.logs))


def _run_results(target) -> dict:
    return json.loads((target / "run_results.json").read_text())


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A database holding the demo races, built by dbt in this process as a first run builds it,
    step by step, with what each step left kept (the tests check it): ``dbt.migrate``; a build
    before the raw tables exist (it fails); the raw tables and a build that passes; the race
    data build; then the first docs site, in ``first/``."""
    base = tmp_path_factory.mktemp("dbt-docs")
    seen = SimpleNamespace(
        base=base, target=base / "state" / "target", logs=base / "logs", db=create_database()
    )
    target = seen.target
    try:
        with pytest.MonkeyPatch.context() as monkeypatch:
            _use(monkeypatch, seen)
            printed = io.StringIO()  # what dbt prints of its own (as capsys would see it)
            with contextlib.redirect_stdout(printed):
                demo_races(seen.db)
                dbt.migrate(VARIABLES)
                seen.manifest_after_migrate = (target / "manifest.json").exists()
                # No raw tables yet: the models reading them fail, and the build says so.
                try:
                    dbt.build(VARIABLES, dbt.parse(VARIABLES))
                except RacemapError as exc:
                    seen.failed_build = exc
                else:
                    seen.failed_build = None
            seen.failed_build_printed = printed.getvalue()
            seen.failed = _run_results(target)

            with seen.db.transaction() as conn:
                ensure_raw_tables(conn)
            dbt.build(VARIABLES, dbt.parse(VARIABLES))
            seen.built = _run_results(target)
            seen.manifest_after_build = (target / "manifest.json").exists()
            # racemap sync's build: the race data marts and their checks (empty before any sync).
            dbt.build_race_data(VARIABLES)
            seen.race_data = _run_results(target)
            seen.manifest_after_race_data = (target / "manifest.json").exists()
            seen.log = (seen.logs / "dbt.log").read_text()

            with seen.db.transaction() as conn:
                seen.first = dbt.docs(base / "first", VARIABLES, conn)
        yield seen
    finally:
        drop_database(seen.db)
        shutil.rmtree(base, ignore_errors=True)


def test_docs_site_in_reports_with_lineage_and_catalog(built):
    reports = built.base / "first"
    index, generated = built.first  # the first docs of the database

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
    assert built.db.password is None or built.db.password not in html


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


def test_docs_are_generated_again_only_when_the_project_vars_or_catalog_change(built, monkeypatch):
    """The site is kept beside dbt's target with a key: a second run with nothing changed copies
    it; another var, or a column the catalog did not have, generates it again. (The first docs,
    generated: the fixture's, in ``first/``.)"""
    _use(monkeypatch, built)
    base = built.base

    def docs(reports, variables):
        with built.db.transaction() as conn:
            return dbt.docs(base / reports, variables, conn)

    assert built.first[1] is True
    index, generated = docs("second", VARIABLES)
    assert generated is False
    assert index.read_bytes() == (base / "first" / "dbt-docs" / "index.html").read_bytes()
    assert docs("other-vars", {"as_of": "2026-01-01"})[1] is True
    assert docs("same-again", {"as_of": "2026-01-01"})[1] is False
    with built.db.transaction() as conn, conn.cursor() as cur:
        cur.execute("alter table public.races add column notes text")
    index, generated = docs("new-column", {"as_of": "2026-01-01"})
    assert generated is True
    catalog = json.loads((index.parent / "catalog.json").read_text())
    assert "notes" in catalog["sources"]["source.racemap.app.races"]["columns"]


def test_a_build_writes_its_run_results_and_an_info_log_but_no_manifest(built, monkeypatch):
    """dbt.migrate, dbt.parse, dbt.build and dbt.build_race_data leave manifest.json to the
    docs (writing it was half of a warm parse and a tenth of a warm build); each build's
    run_results.json is written, a failed build's too; dbt.log is at info level unless
    DBT_LOG_LEVEL_FILE says otherwise. A failed build is one line with each node's cause and
    the log's path, and dbt prints nothing of its own. (The steps: the fixture's, before the
    first docs.)"""
    logs = built.logs
    assert not built.manifest_after_migrate

    # No raw tables yet: the models reading them fail, and the build says so.
    assert built.failed_build is not None
    message = str(built.failed_build)
    assert re.search("dbt build failed", message), message
    assert "\n" not in message
    assert re.search(r': relation "raw\.openf1_\w+" does not exist; ', message), message
    assert message.endswith(f"(in full: {logs / 'dbt.log'})"), message
    assert "Database Error" not in message
    assert built.failed_build_printed == ""
    assert "error" in {result["status"] for result in built.failed["results"]}

    assert built.built["args"]["which"] == "build" and len(built.built["results"]) > 100
    assert {result["status"] for result in built.built["results"]} <= {"success", "pass"}
    assert not built.manifest_after_build
    # racemap sync's build: the race data marts and their checks (empty before any sync).
    built_ids = {result["unique_id"] for result in built.race_data["results"]}
    assert "model.racemap.race_laps" in built_ids
    assert "model.racemap.race_openf1_mapping" not in built_ids
    assert not built.manifest_after_race_data
    assert "[info ]" in built.log and "[debug]" not in built.log

    _use(monkeypatch, built)
    monkeypatch.setenv("DBT_LOG_LEVEL_FILE", "debug")
    dbt.parse(VARIABLES)
    assert "[debug]" in (logs / "dbt.log").read_text()
