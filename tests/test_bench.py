"""``racemap bench`` on a tiny configuration: the structure and the facts, never the timings."""

from __future__ import annotations

import json

import pytest
from conftest import SERVER_URL, query, racemap_command

import benchmarks
from racemap.db import parse_database_url


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory):
    reports = tmp_path_factory.mktemp("bench-reports")
    report = benchmarks.run(
        database_url=SERVER_URL,
        scales=[1, 10],
        reference_races=2,
        reports_dir=reports,
        parts=("requests", "scales", "memory", "imports"),
        memory_sizes=(1_000, 4_000),
        log=lambda *_: None,
    )
    return report, reports


def test_bench_json_is_written_and_printable(tiny_report):
    report, reports = tiny_report
    assert json.loads((reports / "bench.json").read_text())["machine"]["cpus"] >= 1
    text = benchmarks.format_report(report)
    for heading in ("REQUESTS", "SCALES", "PLAN", "MEMORY", "IMPORTS"):
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
    one, ten = scales["results"]
    assert one["scale"] == 1 and one["finished"] is True
    assert (one["races"], one["meetings"], one["sessions"]) == (103, 74, 364)
    # 2022: before coverage; 2026: nothing in the snapshot.
    assert one["by_reason"] == {"mapped": 70, "before_openf1_coverage": 22, "no_meeting": 11}
    assert one["applied"] == 70 and one["conflicts"] == 0
    assert one["mapped_matches_scale"] is True
    assert (ten["scale"], ten["races"], ten["by_reason"]["mapped"]) == (10, 1030, 700)
    assert ten["mapped_matches_scale"] is True and ten["applied"] == 700
    assert [(g["from"], g["to"], g["data"]) for g in scales["growth"]] == [(1, 10, 10.0)]
    assert "model:int_races_matched_to_meetings" in ten["node_seconds"]
    assert any("EXPLAIN ANALYZE" in label for label in scales["explain"])
    for item in scales["explain"].values():
        assert item["plan"] and item["findings"]


def test_no_join_rescans_its_inner_side_at_ten_times_the_data(tiny_report):
    """The plans of the models that join, at x10 (1,030 races): no nested loop reads a table
    again for each outer row. Quadratic plans showed here first (issue 21: a CTE fence hid the
    races' statistics, the planner expected a row or two, and the candidate join, the matching
    model and the attention view's blockers became nested loops). Rows, not seconds: the plan
    the planner picks for these statistics."""
    scales = tiny_report[0]["scales"]
    checked = scales["rescans"]["x10"]
    assert {
        "int_races_joined_to_race_sessions",
        "int_races_matched_to_meetings",
        "int_matches_resolved",
        "race_openf1_mapping",
        "races_needing_attention",
        "mapping_updates",
    } <= set(checked)
    assert {model: found for model, found in checked.items() if found} == {}
    # The bench's own lines say the same (the growth check reads the clock: not asserted here).
    assert [line for line in scales["failures"] if "Nested Loop" in line] == []
    assert [line for line in scales["failures"] if "did not finish" in line] == []


def test_growth_check_names_the_scale_and_the_node():
    from benchmarks.scales import GROWTH_FLOOR_SECONDS, growth_failures

    def scale(n, apply, **seconds):
        return {"scale": n, "sessions": 364 * n, "node_seconds": seconds, "apply_seconds": apply}

    results = [
        scale(1, 0.02, **{"model:a": 0.05, "model:b": 0.4, "test:c": 0.01}),
        # a: fixed cost; b: linear; c: 0.01 s -> 2.9 s is within 12 x the floor.
        scale(
            10, 0.3, **{"model:a": 0.06, "model:b": 3.9, "test:c": 12 * GROWTH_FLOOR_SECONDS - 0.1}
        ),
        # b: ten times the data, fifty times the time; the apply too.
        scale(100, 15.0, **{"model:a": 0.07, "model:b": 195.0, "test:c": 20.0}),
    ]
    lines = growth_failures(results)
    assert len(lines) == 2
    assert lines[0].startswith("x100: model:b: 195 s, ×50.0 its 3.9 s at x10 for ×10 the data")
    assert lines[1].startswith("x100: apply: 15 s, ×50.0 its 0.3 s at x10 for ×10 the data")


def test_rescan_check_reads_rows_and_loops_not_time():
    from benchmarks.scales import rescans

    def scan(relation, rows, loops, removed=0, **more):
        return {
            "Node Type": "Seq Scan",
            "Relation Name": relation,
            "Actual Rows": rows,
            "Actual Loops": loops,
            "Rows Removed by Filter": removed,
            **more,
        }

    def loop(inner):
        outer = scan("races", 1020, 1, **{"Parent Relationship": "Outer"})
        return {
            "Node Type": "Nested Loop",
            "Plans": [outer, {**inner, "Parent Relationship": "Inner"}],
        }

    quadratic = loop(scan("openf1_sessions", 710, 1020, removed=2930))
    assert rescans({"Node Type": "Hash Join", "Plans": [quadratic]}) == [
        "Nested Loop: Seq Scan on openf1_sessions read 1020 times, 3640 rows each"
    ]
    lookup = {
        "Node Type": "Index Scan",
        "Relation Name": "races",
        "Actual Rows": 1,
        "Actual Loops": 1020,
    }
    assert rescans(loop(lookup)) == []
    assert rescans(loop(scan("unmapped_reasons", 9, 1020))) == []  # a seed: a few rows a loop


def test_a_failed_check_fails_the_bench():
    report = {
        "scales": {"failures": ["x100: model:m: did not finish: dbt build cancelled"]},
        "memory": {"failures": ["the whole session's car_data ... over the target of 2048 MiB"]},
    }
    assert benchmarks.failures(report) == [
        "scales x100: model:m: did not finish: dbt build cancelled",
        "memory the whole session's car_data ... over the target of 2048 MiB",
    ]
    assert benchmarks.failures({"scales": {"error": "boom"}}) == []


def test_memory_stores_each_answer_in_a_process_of_its_own(tiny_report):
    """The sync's fetch and store of car_data of session 9606 from the local OpenF1 server,
    each size in a child whose peak resident memory is read; an empty answer is the baseline.
    Figures, not asserted: only that each child stored its whole answer and was measured."""
    memory = tiny_report[0]["memory"]
    assert "error" not in memory, memory
    # Singapore 2024's race: 20 cars, two hours, a sample every 270 ms.
    assert (memory["session_key"], memory["session_records"]) == (9606, 20 * 26_666)
    results = memory["results"]
    assert [r["records"] for r in results] == [0, 1_000, 4_000]  # each checked stored whole
    assert results[0]["peak_mib"] == memory["baseline_mib"] > 0
    assert all(r["peak_mib"] >= memory["baseline_mib"] for r in results[1:])
    assert all("kib_per_record" in r for r in results[1:])


def test_memory_checks_its_target_and_its_growth():
    from benchmarks.memory import GROWTH_LIMIT, TARGET_MIB, _report

    def measured(*peaks):
        sizes = [0, 50_000, 533_320]
        return [
            {"records": n, "peak_mib": p, "seconds": 1.0} for n, p in zip(sizes, peaks, strict=True)
        ]

    assert _report(measured(100, 150, 620), 533_320)["failures"] == []
    # Held twice over: the per-record cost doubles with the answer.
    doubled = _report(measured(100, 150, 100 + 2 * 50 * 533_320 / 50_000), 533_320)
    assert doubled["failures"] == [
        "533,320 records take 2.048 KiB a record, 50,000 took 1.024: more than "
        f"{GROWTH_LIMIT}x (worse than linear)"
    ]
    over = _report(measured(100, 300, TARGET_MIB + 1), 533_320)["failures"]
    assert over == [
        f"the whole session's car_data (533,320 records) peaks at {TARGET_MIB + 1} MiB, over the "
        f"target of {TARGET_MIB} MiB"
    ]


def test_a_devices_saving_is_the_median_of_what_it_saved_round_by_round():
    """The shared kernel's five rounds of 2026-12-06 as the bench printed them (every device,
    then without it): the medians' difference is 0.83 s, under the second a device must earn;
    the rounds' own savings (3.92, 1.77, 0.73, 0.61, 1.48) have the median 1.48 s: a slower half
    hour slowed both runs of its round, and pairing runs of different rounds hid the saving."""
    from benchmarks.devices import devices_lines
    from benchmarks.end_to_end import paired_saving

    every = [10.77, 11.68, 11.65, 11.55, 9.96]
    without = [14.69, 13.45, 12.38, 12.16, 11.44]
    assert paired_saving(every, without) == (1.48, [3.92, 1.77, 0.73, 0.61, 1.48])
    with pytest.raises(ValueError):  # a round without both runs pairs nothing
        paired_saving(every, without[:4])
    report = {
        "rounds": 5,
        "keep_when_saving_at_least_seconds": 1.0,
        "with_every_device": {"seconds": every, "median_seconds": 11.55},
        "devices": {
            "shared_kernel": {
                "seconds_without": without,
                "median_without": 12.38,
                "saving_by_round": [3.92, 1.77, 0.73, 0.61, 1.48],
                "saving_seconds": 1.48,
                "keep": True,
            }
        },
    }
    text = "\n".join(devices_lines(report))
    assert "the saving is the median of the rounds' own" in text
    (row,) = [line for line in text.splitlines() if line.startswith("plain shared_kernel")]
    assert row.split()[2:5] == ["12.38", "+1.48", "(keep)"]
    assert "+3.92, +1.77, +0.73, +0.61, +1.48" in row


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


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--parts", "nosuch"], "--parts 'nosuch': choose among requests,"),
        (["--scales", "abc"], "--scales 'abc': give integers"),
        (["--scales", "0"], "at least 1"),
        (["--rounds", "0"], "argument --rounds: give a whole number from 1, not 0"),
        (["--reference-races", "-1"], "argument --reference-races: give a whole number from 1"),
        (["--max-build-seconds", "-1"], "give 0 or more seconds, not -1"),
        (["--memory-records", "0"], "--memory-records '0': give record counts from 1, or all"),
    ],
)
def test_bench_usage_errors_exit_2_before_anything_runs(args, expected, capsys):
    """A bad option is a usage error (exit 2, one line), as in every command: --parts and
    --scales exited 1, and --rounds 0 started a bench that measured nothing."""
    code, _out, err = racemap_command(
        ["bench", "--database-url", "postgresql://nobody@127.0.0.1:1/none", *args], capsys
    )
    assert code == 2
    err = err.strip().splitlines()
    assert len(err) == 1 and expected in err[0]


def test_the_bench_asks_its_local_server_without_the_shells_openf1_account(monkeypatch):
    """The bench's OpenF1 is its own local server, which issues no token: an account set in the
    shell failed the requests and race_data parts (the token request got a 404)."""
    from benchmarks.scratch import local_openf1_client
    from racemap.testing.openf1_server import serve

    monkeypatch.setenv("OPENF1_USERNAME", "someone@example.com")
    monkeypatch.setenv("OPENF1_PASSWORD", "not-for-the-bench")
    with serve() as server, local_openf1_client(server.base_url, retry_seconds=5) as client:
        answer = client.fetch("meetings", 2024)
    assert len(answer.records) == 25 and server.tokens_issued == 0
