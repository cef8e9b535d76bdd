"""The whole pipeline on the real bundled data, against a real PostgreSQL."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from conftest import query, run_pipeline

# (race id, meeting_key, session_key): races whose matching is easy to get wrong.
NAMED_RACES = [
    ("1100", 1143, 7787),  # Australia 2023: DST ended on race day (offsets differ per session)
    ("1119", 1225, 9189),  # Las Vegas 2023: Saturday-night race, Sunday 06:00 UTC
    ("1121", 1229, 9472),  # Bahrain 2024: a Saturday race; testing (1228) shares the circuit
    ("1125", 1233, 9673),  # China 2024: sprint weekend; the Sprint 9672 is not the race
    ("1141", 1249, 9636),  # São Paulo 2024: start brought forward 90 minutes
    ("1142", 1250, 9644),  # Las Vegas 2024: Ergast gives the race a day early (+24 h)
    ("1143", 1251, 9655),  # Qatar 2024: Ergast's time is an hour off
    ("1156", 1277, 9947),  # British GP 2025: meeting_key out of chronological order
]


def test_offline_run_maps_the_snapshot_races(mapped_demo):
    db, result, reports = mapped_demo
    assert result.exit_code == 0, result.failures
    for race_id, meeting_key, session_key in NAMED_RACES:
        rows = query(
            db,
            "select openf1_meeting_key, openf1_session_key from public.races where id = %s",
            (race_id,),
        )
        assert rows == [(meeting_key, session_key)], race_id

    summary = result.summary
    assert summary["races"] == 1160
    assert summary["mapped"] == 70  # 2023: 22, 2024: 24, 2025: 24
    assert summary["unmapped_by_reason"] == {"before_openf1_coverage": 1079, "no_meeting": 11}
    assert summary["updates_applied"] == 70
    assert summary["validations"] == {"passed": 2, "failed": 0, "failed_expectations": []}
    assert summary["openf1"]["rows_loaded"] == 73 + 359 + 7063 + 1734  # + results, grid
    assert summary["openf1"]["requests"] == 0  # offline


def test_every_mapped_session_is_the_race_of_its_meeting(mapped_demo):
    db, _result, _reports = mapped_demo
    rows = query(
        db,
        """
        select r.id, s.session_name, s.meeting_key = r.openf1_meeting_key
        from public.races r join raw.openf1_sessions s on s.session_key = r.openf1_session_key
    """,
    )
    assert len(rows) == 70
    assert {(name, same) for _id, name, same in rows} == {("Race", True)}


def test_reports_are_written(mapped_demo):
    _db, result, reports = mapped_demo
    summary = json.loads((reports / "summary.json").read_text())
    assert summary["mapped"] == 70 and summary["run_id"] == result.run_id
    with (reports / "unmapped_races.csv").open() as handle:
        unmapped = list(csv.DictReader(handle))
    assert len(unmapped) == 1090
    assert {"race_id", "year", "name", "reason"} <= set(unmapped[0])
    late_2025 = [r for r in unmapped if r["year"] in ("2023", "2024", "2025")]
    assert late_2025 == []  # the complete snapshot maps every race of 2023-2025
    with (reports / "mapping_updates.csv").open() as handle:
        updates = list(csv.DictReader(handle))
    assert len(updates) == 70 and {u["status"] for u in updates} == {"applied"}
    assert {u["action"] for u in updates} == {"fill"}
    assert (reports / "validation" / "index.html").is_file()
    # Every expectation's observed value reads as a value: an expectation whose condition
    # selects no row (no race's results disagree) once showed "NaN% null".
    pages = list((reports / "validation").rglob("*.html"))
    assert len(pages) > 1 and [p.name for p in pages if "NaN%" in p.read_text()] == []
    notebook = json.loads((reports / "notebooks" / "load_openf1.ipynb").read_text())
    assert notebook["metadata"]["papermill"]["parameters"]["offline"] is True


def test_a_second_run_with_the_plain_calls_changes_nothing(applied_db, tmp_path):
    """A second run on the first run's database (a copy) applies nothing and reloads nothing.
    It runs with every concurrency device replaced by the plain call (racemap bench --parts
    devices measures these), which gives the same run: verdict, checks, the record notebook,
    the docs and the mapping report."""
    from racemap.errors import UsageError
    from racemap.pipeline import DEVICES

    db = applied_db
    before = query(
        db, "select id, openf1_meeting_key, openf1_session_key from public.races order by id"
    )
    raw_before = query(db, "select meeting_key, loaded_at from raw.openf1_meetings order by 1")
    second = run_pipeline(db, tmp_path, plain=frozenset(DEVICES))
    assert second.exit_code == 0 and second.summary["validations"]["failed"] == 0
    assert second.summary["updates"] == 0 and second.summary["updates_applied"] == 0
    assert (
        query(db, "select id, openf1_meeting_key, openf1_session_key from public.races order by id")
        == before
    )
    assert (
        query(db, "select meeting_key, loaded_at from raw.openf1_meetings order by 1") == raw_before
    )
    assert [c["name"] for c in second.summary["checkpoints"]] == ["raw", "mapping"]
    for name in ("mapping_report.html", "notebooks/load_openf1.ipynb", "dbt-docs/index.html"):
        assert (tmp_path / name).exists(), name
    with pytest.raises(UsageError, match="--plain threads: choose among gx_worker"):
        run_pipeline(db, tmp_path, plain=frozenset({"threads"}))


def test_expected_mapping_2023_2025(mapped_demo):
    """The whole 2023-2025 table against tests/expected/mapping_2023_2025.csv."""
    db, _result, _reports = mapped_demo
    expected_path = Path(__file__).parent / "expected" / "mapping_2023_2025.csv"
    with expected_path.open() as handle:
        expected = [
            (
                r["race_id"],
                r["status"],
                r["meeting_key"] or None,
                r["session_key"] or None,
                r["reason"] or None,
            )
            for r in csv.DictReader(handle)
        ]
    actual = [
        (race_id, status, str(m) if m else None, str(s) if s else None, reason)
        for race_id, status, m, s, reason in query(
            db,
            """
            select race_id, status, meeting_key, session_key, reason
            from racemap.race_openf1_mapping where season between 2023 and 2025
            order by race_start_at
        """,
        )
    ]
    assert actual == expected


def test_migration_adds_unique_indexed_key_columns(mapped_demo):
    db, _result, _reports = mapped_demo
    rows = query(
        db,
        """
        select a.attname, format_type(a.atttypid, a.atttypmod), i.indisunique
        from pg_index i
        join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
        where i.indrelid = 'public.races'::regclass and i.indnatts = 1
          and a.attname like 'openf1_%'
        order by 1
    """,
    )
    assert rows == [
        ("openf1_meeting_key", "integer", True),
        ("openf1_session_key", "integer", True),
    ]
