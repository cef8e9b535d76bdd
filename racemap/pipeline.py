"""``racemap run``: migrate, load, validate raw, dbt build, apply, validate, report."""

from __future__ import annotations

import json
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from . import apply as apply_mod
from . import dbt, reports
from .db import Database, relation_exists, resolve_database
from .demo import create_demo_tables
from .errors import RacemapError
from .loader import ensure_raw_tables, load_openf1, parse_seasons
from .notebooks import execute
from .paths import DEFAULT_REPORTS_DIR
from .results import prepare_results
from .settings import DEFAULT_VARS, RacesTable, temporary_environ
from .validate import coverage_threshold, run_checkpoint


@dataclass
class RunOptions:
    database_url: str | None = None
    seasons: str | None = None
    offline: bool = False
    openf1_url: str | None = None
    refresh: bool = False
    dry_run: bool = False
    allow_changes: bool = False
    reports_dir: Path = DEFAULT_REPORTS_DIR
    variables: dict = field(default_factory=dict)
    pgdata: Path | None = None
    log: callable = print


@dataclass
class RunResult:
    run_id: str
    summary: dict
    exit_code: int
    failures: list[str]


class Stages:
    """Wall time of each stage, for the summary and the benchmark."""

    def __init__(self, log):
        self.seconds: dict[str, float] = {}
        self.log = log

    @contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        self.log(f"-> {name}")
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - start, 3)


def check_race_columns(conn, races: RacesTable, variables: dict) -> None:
    """Every column the race_* vars name exists: a clear error before dbt's SQL one."""
    with conn.cursor() as cur:
        cur.execute(
            "select column_name from information_schema.columns"
            " where table_schema = %s and table_name = %s",
            (races.schema, races.table),
        )
        present = {row[0] for row in cur.fetchall()}
    wanted = {**DEFAULT_VARS, **variables}
    for var in (
        "race_id_column",
        "race_circuit_column",
        "race_date_column",
        "race_name_column",
        "race_time_column",
    ):
        column = wanted.get(var)
        if column and column not in present:
            raise RacemapError(
                f"column {column!r} ({var}) does not exist in {races.name}: "
                f"set --var {var}=<column>"
            )


def prepare_races(db: Database, races: RacesTable, variables: dict, log=print) -> None:
    """Demo races on the embedded database; a clear error when a user database lacks the table."""
    with db.transaction() as conn:
        if relation_exists(conn, races.schema, races.table):
            check_race_columns(conn, races, variables)
            return
        if db.embedded and (races.schema, races.table) == ("public", "races"):
            count = create_demo_tables(conn)
            log(f"created the demo tables public.races ({count} races) and public.circuits")
            return
    raise RacemapError(
        f"table {races.name} does not exist in {db.display}: racemap maps an existing races "
        "table (name it with --var races_schema=... --var races_table=...)"
    )


def run(options: RunOptions) -> RunResult:
    log = options.log
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]
    seasons = parse_seasons(options.seasons)
    races = RacesTable.from_vars(options.variables)
    threshold = coverage_threshold(options.variables)  # a bad value fails before any work
    reports_dir = Path(options.reports_dir)
    stages = Stages(log)
    failures: list[str] = []

    with stages.stage("start_database"):
        db = resolve_database(options.database_url, options.pgdata)
        db.export_env()
        with db.transaction() as conn:
            ensure_raw_tables(conn)
    log(f"database: {db.display}")
    with stages.stage("migrate"):
        prepare_races(db, races, options.variables, log)
        prepare_results(db, options.variables, log)
        dbt.migrate(options.variables)

    with stages.stage("load"), temporary_environ(OPENF1_URL=options.openf1_url):
        # Loaded here, in racemap's process, so the progress bar shows on a terminal; the
        # notebook, run with load=False, is the record of this load (its raw.openf1_loads
        # rows). No URL or credential is a parameter: parameters are saved in the notebook.
        load_openf1(db, seasons, offline=options.offline, refresh=options.refresh, run_id=run_id)
        execute(
            "load_openf1",
            reports_dir,
            {
                "seasons": ",".join(str(s) for s in seasons),
                "offline": options.offline,
                "refresh": options.refresh,
                "run_id": run_id,
                "load": False,
            },
        )
        load = _load_counts(db, run_id)
    log(
        f"loaded OpenF1 {', '.join(map(str, seasons))}: {load['rows_loaded']} rows, "
        f"{load['rows_rejected']} rejected, {load['requests']} HTTP requests"
    )

    validations: list = []
    with stages.stage("validate_raw"):
        outcome = run_checkpoint(db, "raw", races, reports_dir, f"{run_id}-raw")
        validations.append(outcome)
        if not outcome.success:
            failures += outcome.failed
            # Stop before dbt and the apply: nothing is mapped from data that failed its checks.
            reports.write_summary(
                reports_dir / "summary.json",
                {
                    **_run_header(run_id, db, seasons, options, stopped_at="validate_raw"),
                    **_validation_summary(validations, failures),
                    "openf1": load,
                    "stage_seconds": stages.seconds,
                },
            )
            raise RacemapError("raw OpenF1 data failed validation: " + "; ".join(outcome.failed))

    with stages.stage("dbt_build"):
        dbt.build(options.variables)

    with stages.stage("dbt_docs"):
        dbt.docs(reports_dir, options.variables)

    with stages.stage("apply"):
        applied = apply_mod.apply_updates(
            db, run_id, races, allow_changes=options.allow_changes, dry_run=options.dry_run
        )

    with stages.stage("validate"):
        outcome = run_checkpoint(
            db, "mapping", races, reports_dir, f"{run_id}-mapping", threshold=threshold
        )
        validations.append(outcome)
        failures += outcome.failed

    with stages.stage("reports"):
        with db.transaction() as conn:
            counts = reports.mapping_counts(conn)
            coverage = reports.mapping_coverage(conn)
            reports.write_csv(
                reports_dir / "unmapped_races.csv",
                reports.UNMAPPED_COLUMNS,
                reports.unmapped_rows(conn),
            )
        reports.write_csv(reports_dir / "mapping_updates.csv", reports.UPDATE_COLUMNS, applied.rows)
        summary = {
            **_run_header(run_id, db, seasons, options, stopped_at=None),
            **counts,
            "updates": len(applied.rows),
            "updates_applied": applied.applied,
            "updates_conflicting": applied.conflicts,
            "updates_held_back": applied.count("held_back"),
            **_validation_summary(validations, failures),
            "coverage": coverage,
            "coverage_threshold": threshold,
            "openf1": load,
            "stage_seconds": stages.seconds,
        }
        reports.write_summary(reports_dir / "summary.json", summary)
        write_mapping_report(reports_dir, run_id, threshold)
    reports.write_summary(reports_dir / "summary.json", summary)
    return RunResult(run_id, summary, 0 if not failures else 1, failures)


def _run_header(run_id: str, db: Database, seasons, options: RunOptions, stopped_at) -> dict:
    """What summary.json says of the run itself (``stopped_at``: the stage it stopped at)."""
    return {
        "run_id": run_id,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "database": db.display,
        "seasons": seasons,
        "offline": options.offline,
        "dry_run": options.dry_run,
        "stopped_at": stopped_at,
    }


def _validation_summary(validations: list, failures: list[str]) -> dict:
    """The validations part of summary.json: counts, and each checkpoint with its run name."""
    return {
        "validations": {
            "passed": sum(1 for v in validations if v.success),
            "failed": sum(1 for v in validations if not v.success),
            "failed_expectations": failures,
        },
        "checkpoints": [
            {
                "name": v.checkpoint,
                "run_name": v.run_name,
                "success": v.success,
                "expectations": v.evaluated,
                "failed": v.failed,
            }
            for v in validations
        ],
    }


def write_mapping_report(reports_dir: Path, run_id: str, threshold: float) -> Path:
    """notebooks/mapping_report.ipynb by papermill, then reports/mapping_report.html."""
    from .report_data import export_html

    executed = execute(
        "mapping_report",
        reports_dir,
        {
            "reports_dir": str(Path(reports_dir).resolve()),
            "run_id": run_id,
            "coverage_threshold": threshold,
        },
    )
    return export_html(executed, Path(reports_dir) / "mapping_report.html")


def _load_counts(db: Database, run_id: str) -> dict:
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
    ]
    return "\n".join(lines)


def dump(summary: dict) -> str:
    return json.dumps(summary, indent=2, default=str)
