"""The reports of a run: CSVs of the marts and summary.json."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from .db import query_dicts

UNMAPPED_COLUMNS = [
    "race_id",
    "year",
    "name",
    "reason",
    "circuit_id",
    "candidate_count",
    "race_start_at",
]
UPDATE_COLUMNS = [
    "race_id",
    "race_name",
    "action",
    "status",
    "current_meeting_key",
    "current_session_key",
    "meeting_key",
    "session_key",
    "method",
]


def write_csv(path: Path, columns: list[str], rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    return path


def unmapped_rows(conn) -> list[dict]:
    return query_dicts(
        conn,
        "select race_id, year, name, reason, circuit_id, candidate_count, race_start_at"
        " from racemap.unmapped_races order by year, race_start_at, race_id",
    )


def mapping_counts(conn) -> dict:
    rows = query_dicts(
        conn,
        "select status, reason, count(*) as n from racemap.race_openf1_mapping"
        " group by status, reason",
    )
    mapped = sum(r["n"] for r in rows if r["status"] == "mapped")
    by_reason = {r["reason"]: r["n"] for r in rows if r["status"] == "unmapped"}
    return {
        "races": sum(r["n"] for r in rows),
        "mapped": mapped,
        "unmapped": sum(by_reason.values()),
        "unmapped_by_reason": dict(sorted(by_reason.items())),
        "results_check": results_check_counts(conn),
    }


def results_check_counts(conn) -> dict:
    """Mapped races per results_check (agree, disagree, no_results)."""
    rows = query_dicts(
        conn,
        "select results_check, count(*) as n from racemap.race_openf1_mapping"
        " where status = 'mapped' group by results_check order by results_check",
    )
    return {r["results_check"]: r["n"] for r in rows}


def mapping_coverage(conn) -> dict:
    """Coverage per season within OpenF1's coverage (racemap.mapping_coverage)."""
    rows = query_dicts(
        conn,
        "select season, races_with_race_session, mapped_with_race_session, coverage"
        " from racemap.mapping_coverage order by season",
    )
    return {
        str(r["season"]): {
            "races_with_race_session": r["races_with_race_session"],
            "mapped": r["mapped_with_race_session"],
            "coverage": None if r["coverage"] is None else float(r["coverage"]),
        }
        for r in rows
    }


def write_summary(path: Path, summary: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    return path
