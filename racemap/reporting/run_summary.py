"""What a run's summary.json says, and the short table ``racemap run`` prints from it."""

from __future__ import annotations

from datetime import UTC, datetime

from racemap.db import Database
from racemap.reporting import changes as changes_mod
from racemap.reporting import plural


def run_header(run_id: str, db: Database | None, seasons, options, stopped_at) -> dict:
    """What summary.json says of the run itself (``stopped_at``: the stage it stopped at)."""
    return {
        "run_id": run_id,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "database": db.display if db else None,
        "seasons": seasons,
        "offline": options.offline,
        "dry_run": options.dry_run,
        "allow_changes": options.allow_changes,
        "stopped_at": stopped_at,
    }


def validation_summary(validations: list) -> dict:
    """The validations part of summary.json: counts, and each checkpoint with its run name."""
    return {
        "validations": {
            "passed": sum(1 for v in validations if v.passed),
            "failed": sum(1 for v in validations if not v.passed),
            "failed_expectations": [f for v in validations for f in v.failed + v.attention],
        },
        "checkpoints": [
            {
                "name": v.checkpoint,
                "run_name": v.run_name,
                "success": v.passed,
                "expectations": v.evaluated,
                "failed": v.failed,
                "attention": v.attention,
            }
            for v in validations
        ],
    }


def load_counts(db: Database, run_id: str) -> dict:
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(
            "select coalesce(sum(requests), 0), coalesce(sum(rows_loaded), 0),"
            " coalesce(sum(rows_rejected), 0), count(*) filter (where status = 'ok')"
            " from raw.openf1_loads where run_id = %s",
            (run_id,),
        )
        requests, loaded, rejected, fetches = cur.fetchone()
    return {
        "requests": int(requests),
        "rows_loaded": int(loaded),
        "rows_rejected": int(rejected),
        "fetches": int(fetches),
    }


def format_summary(summary: dict) -> str:
    """The summary.json counts as the short table ``racemap run`` prints."""
    validations = summary["validations"]
    lines = [
        f"races            {summary['races']}",
        f"mapped           {summary['mapped']}",
        f"unmapped         {summary['unmapped']}",
    ]
    for reason, n in summary["unmapped_by_reason"].items():
        lines.append(f"  {reason:<24}{n}")
    lines += [
        f"updates applied  {summary['updates_applied']} of {summary['updates']}"
        + (" (dry run)" if summary["dry_run"] else ""),
        f"conflicts        {summary['updates_conflicting']}",
    ]
    if summary.get("updates_held_back"):
        lines.append(f"held back        {summary['updates_held_back']} (--allow-changes)")
    coverage = summary.get("coverage") or {}
    if coverage:
        lines.append(
            "coverage         "
            + ", ".join(
                f"{season} {'-' if c['coverage'] is None else format(c['coverage'], '.0%')}"
                for season, c in coverage.items()
            )
        )
    lines += [
        f"validations      {validations['passed']} passed, {validations['failed']} failed",
        f"OpenF1 requests  {summary['openf1']['requests']}",
        f"changes          {changes_mod.describe(summary.get('changes'))}",
        f"verdict          {summary['verdict']}"
        + (f" ({_need(len(summary['attention']))} attention)" if summary["attention"] else ""),
    ]
    return "\n".join(lines)


def _need(count: int) -> str:
    """``1 race needs``, ``2 races need``."""
    return f"{plural(count, 'race')} {'needs' if count == 1 else 'need'}"
