"""The reports of a run: CSVs of the marts and summary.json."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from racemap.db import query_dicts

# The report set a run writes (DESIGN.md's fixed paths), replaced as a whole when a run ends.
REPORT_SET = (
    "summary.json",
    "unmapped_races.csv",
    "mapping_updates.csv",
    "changes.csv",
    "mapping_report.html",
    "validation",
    "notebooks",
    "dbt-docs",
)
UNMAPPED_COLUMNS = [
    "race_id",
    "year",
    "name",
    "reason",
    "detail",
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
    "reason",
]
ATTENTION_COLUMNS = [
    "race_id",
    "season",
    "race_name",
    "kind",
    "reason",
    "detail",
    "action",
    "held_meeting_key",
    "held_session_key",
    "meeting_key",
    "session_key",
]


class ReportSet:
    """A run writes its reports into a fresh directory beside the published ones and puts them
    in place when it ends, success or failure: nothing of an earlier run can be read as this
    one's (a report this run did not write is removed)."""

    def __init__(self, reports_dir: Path, run_id: str):
        self.final = Path(reports_dir)
        self.dir = self.final / f".run-{run_id}"
        self.dir.mkdir(parents=True, exist_ok=True)

    def publish(self) -> Path:
        for name in REPORT_SET:
            old, new = self.final / name, self.dir / name
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old)
            elif old.exists() or old.is_symlink():
                old.unlink()
            if new.exists():
                new.replace(old)
        shutil.rmtree(self.dir, ignore_errors=True)
        return self.final


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
        "select race_id, year, coalesce(name, race_id) as name, reason, detail, circuit_id,"
        " candidate_count, race_start_at from racemap.unmapped_races"
        " order by year, race_start_at, race_id",
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
        "select season, races, races_expected, mapped, coverage"
        " from racemap.mapping_coverage order by season",
    )
    return {
        str(r["season"]): {
            "races": r["races"],
            "races_expected": r["races_expected"],
            "mapped": r["mapped"],
            "coverage": None if r["coverage"] is None else float(r["coverage"]),
        }
        for r in rows
    }


def attention_rows(conn) -> list[dict]:
    """The races needing a person now (racemap.races_needing_attention), oldest first."""
    rows = query_dicts(
        conn,
        "select race_id, season, coalesce(race_name, race_id) as race_name, kind, reason,"
        " detail, action, held_meeting_key, held_session_key, meeting_key, session_key"
        " from racemap.races_needing_attention"
        " order by season nulls first, race_start_at nulls first, race_id",
    )
    return rows


def attention_line(row: dict) -> str:
    """One line per race: who, what is wrong, what to do."""
    season = f", {row['season']}" if row.get("season") else ""
    return f"race {row['race_id']} ({row['race_name']}{season}): {row['detail']} — {row['action']}"


def write_summary(path: Path, summary: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    return path
