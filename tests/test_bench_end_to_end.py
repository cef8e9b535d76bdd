"""``racemap bench --parts end_to_end,devices`` with one round, on a throw-away embedded
PostgreSQL: the structure and the facts, never the timings. Its own file, so that pytest-xdist
runs it beside tests/test_bench.py's parts (each file goes to one worker)."""

from __future__ import annotations

from pathlib import Path

import pytest

import benchmarks
from benchmarks.end_to_end import SNAPSHOT_SEASONS
from racemap.paths import EMBEDDED_PGDATA


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
        env.setenv("RACEMAP_STATE_DIR", str(base / "state"))
        report = benchmarks.run(
            reports_dir=base / "reports",
            parts=("end_to_end", "devices"),
            rounds=1,
            log=lambda *_: None,
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


def test_devices_measures_the_warm_run_without_each_device(end_to_end_report):
    from racemap.pipeline import DEVICES

    report, _before = end_to_end_report
    devices = report["devices"]
    assert "error" not in devices, devices
    assert list(devices["devices"]) == list(DEVICES)
    # The end-to-end part's first run filled the database: the devices part made none of its own.
    assert devices["first_run"] == {**report["end_to_end"]["first_run"], "part": "end to end"}
    (baseline,) = devices["with_every_device"]["seconds"]
    for d in devices["devices"].values():
        assert len(d["seconds_without"]) == 1 and d["median_without"] > 0
        # One round: its own saving is the median.
        assert d["saving_by_round"] == [pytest.approx(d["median_without"] - baseline, abs=0.002)]
        assert d["saving_seconds"] == d["saving_by_round"][0]
        assert d["keep"] == (d["saving_seconds"] >= devices["keep_when_saving_at_least_seconds"])
    text = benchmarks.format_report(report)
    assert "DEVICES" in text and "plain gx_worker" in text and "saving by round" in text


def test_end_to_end_without_a_server_uses_a_throw_away_embedded_database(end_to_end_report):
    report, before = end_to_end_report
    # The embedded server's URL names its socket directory: postgresql://postgres@...?host=DIR
    from urllib.parse import parse_qs, urlsplit

    temporary = parse_qs(urlsplit(report["server"]).query)["host"][0]
    assert "racemap-scratch-pgdata" in temporary
    assert not Path(temporary).exists()  # the data directory went with the benchmark
    assert Path(temporary) != EMBEDDED_PGDATA
    assert _listing(EMBEDDED_PGDATA) == before  # the user's embedded database: not touched
