"""``racemap bench`` on a tiny configuration: the structure and the facts, never the timings."""

from __future__ import annotations

import json

import pytest
from conftest import SERVER_URL, query

from racemap import bench
from racemap.db import parse_database_url


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory):
    reports = tmp_path_factory.mktemp("bench-reports")
    report = bench.run(
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
    text = bench.format_report(report)
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
    assert (one["races"], one["meetings"], one["sessions"]) == (103, 71, 349)
    # 2022: before coverage; 2025 rounds 22-24 and 2026: nothing in the snapshot.
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
