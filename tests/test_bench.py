"""``racemap bench`` on a tiny configuration: the structure and the facts, never the timings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SERVER_URL, query

import benchmarks
from benchmarks.end_to_end import SNAPSHOT_SEASONS
from racemap.db import parse_database_url
from racemap.paths import EMBEDDED_PGDATA


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory):
    reports = tmp_path_factory.mktemp("bench-reports")
    report = benchmarks.run(
        database_url=SERVER_URL,
        scales=[1],
        reference_races=2,
        reports_dir=reports,
        parts=("requests", "scales", "imports"),
        log=lambda *_: None,
    )
    return report, reports


def test_bench_json_is_written_and_printable(tiny_report):
    report, reports = tiny_report
    assert json.loads((reports / "bench.json").read_text())["machine"]["cpus"] >= 1
    text = benchmarks.format_report(report)
    for heading in ("REQUESTS", "SCALES", "PLAN", "IMPORTS"):
        assert heading in text


def test_racemap_makes_at_most_four_requests_a_season(tiny_report):
    """meetings, sessions, session_result, starting_grid: one request each per season."""
    req = tiny_report[0]["requests"]
    assert req["seasons"] == [2023, 2024, 2025]
    assert req["racemap"]["requests"] <= 4 * len(req["seasons"])
    assert req["racemap"]["server_requests"] == req["racemap"]["requests"]
    assert req["racemap"]["mapped"] == 70


def test_reference_makes_two_requests_a_race_and_maps_the_same_races(tiny_report):
    ref = tiny_report[0]["requests"]["reference"]
    assert ref["races"] == 2 and ref["races_mapped_by_racemap"] == 2
    assert ref["requests"] == 2 * ref["races"] == ref["server_requests"]
    assert ref["queries"] == ref["requests"] - ref["throttled_retries"]
    assert ref["throttled_retries"] == 0  # the client-side limit keeps under the server's
    assert ref["mapped"] == 2 and ref["same_mapping_as_racemap"] is True
    assert ref["differences"] == []
    assert ref["server_filtered"] is True
    assert ref["extrapolated"] is True and ref["full_requests"] == 2 * 70


def test_scale_one_is_the_real_data(tiny_report):
    scales = tiny_report[0]["scales"]
    assert scales["unfinished"] == []
    (one,) = scales["results"]
    assert one["scale"] == 1 and one["finished"] is True
    assert (one["races"], one["meetings"], one["sessions"]) == (103, 74, 364)
    # 2022: before coverage; 2026: nothing in the snapshot.
    assert one["by_reason"] == {"mapped": 70, "before_openf1_coverage": 22, "no_meeting": 11}
    assert one["applied"] == 70 and one["conflicts"] == 0
    assert one["mapped_matches_scale"] is True
    assert scales["growth"] == []
    assert any("EXPLAIN ANALYZE" in label for label in scales["explain"])
    for item in scales["explain"].values():
        assert item["plan"] and item["findings"]


def test_no_heavy_library_is_imported_with_the_pipeline(tiny_report):
    imports = tiny_report[0]["imports"]
    heavy = imports["heavy_modules_after_importing_pipeline"]
    assert "great_expectations" not in heavy and "papermill" not in heavy
    assert {"racemap.pipeline", "great_expectations"} <= set(imports["importtime"])


def test_scratch_databases_are_dropped(tiny_report):
    prefix = tiny_report[0]["scratch_databases"].split("*")[0]
    rows = query(
        parse_database_url(SERVER_URL),
        "select datname from pg_database where datname like %s",
        (prefix + "%",),
    )
    assert rows == []


@pytest.fixture(scope="module")
def end_to_end_report(tmp_path_factory):
    """One round of the floor and the warm run, with no server given: a temporary embedded one."""
    base = tmp_path_factory.mktemp("bench-e2e")
    before = _listing(EMBEDDED_PGDATA)
    with pytest.MonkeyPatch.context() as env:
        # No server: earlier in-process runs leave their DATABASE_URL in this process.
        env.delenv("DATABASE_URL", raising=False)
        # Its own dbt target and GX context, not the session's, for the runs in child processes.
        env.setenv("DBT_TARGET_PATH", str(base / "dbt-target"))
        env.setenv("DBT_LOG_PATH", str(base / "dbt-logs"))
        env.setenv("RACEMAP_GX_ROOT", str(base / "gx-root"))
        report = benchmarks.run(
            reports_dir=base / "reports", parts=("end_to_end",), rounds=1, log=lambda *_: None
        )
    return report, before


def _listing(pgdata: Path) -> list[tuple[str, int]]:
    if not pgdata.exists():
        return []
    return sorted((str(p), p.stat().st_mtime_ns) for p in pgdata.rglob("*") if p.is_file())


def test_end_to_end_measures_the_floor_and_the_warm_run(end_to_end_report):
    report, _before = end_to_end_report
    e2e = report["end_to_end"]
    assert "error" not in e2e, e2e
    assert e2e["rounds"] == 1
    floor = e2e["floor"]
    assert list(floor["steps"]) == ["dbt_build", "import_great_expectations", "papermill"]
    for step in floor["steps"].values():
        assert len(step["seconds"]) == 1 and step["median_seconds"] == step["seconds"][0] > 0
    assert floor["median_seconds"] == pytest.approx(
        sum(s["median_seconds"] for s in floor["steps"].values()), abs=0.01
    )
    warm = e2e["warm"]
    assert warm["command"] == f"racemap run --offline --seasons {SNAPSHOT_SEASONS}"
    (run,) = warm["runs"]
    # The first run mapped the races; the warm run found nothing left to apply.
    assert e2e["first_run"]["mapped"] == run["mapped"] == 70
    assert e2e["first_run"]["updates_applied"] == 70 and run["updates_applied"] == 0
    assert {"load", "dbt_build", "apply", "validate", "reports"} <= set(run["stage_seconds"])
    assert set(warm["median_stage_seconds"]) == set(run["stage_seconds"])
    assert warm["median_seconds"] == run["wall_seconds"]
    assert e2e["ratio_warm_to_floor"] == round(warm["median_seconds"] / floor["median_seconds"], 2)
    text = benchmarks.format_report(report)
    for line in ("END TO END", "ratio warm / floor", "WARM RUN BY STAGE", "floor: dbt build"):
        assert line in text


def test_end_to_end_without_a_server_uses_a_throw_away_embedded_database(end_to_end_report):
    report, before = end_to_end_report
    # The embedded server's URL names its socket directory: postgresql://postgres@...?host=DIR
    from urllib.parse import parse_qs, urlsplit

    temporary = parse_qs(urlsplit(report["server"]).query)["host"][0]
    assert "racemap-bench-pgdata" in temporary
    assert not Path(temporary).exists()  # the data directory went with the benchmark
    assert Path(temporary) != EMBEDDED_PGDATA
    assert _listing(EMBEDDED_PGDATA) == before  # the user's embedded database: not touched
