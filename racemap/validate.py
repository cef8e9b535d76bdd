"""Great Expectations checkpoints over the raw tables, the races table and the mapping.

The file context in ``gx/`` is (re)built by code on every run, get-or-create, so it can be re-run
and reviewed. The connection string is stored as ``${RACEMAP_GX_DATABASE_URL}``: the secret stays
in this process's environment. Data Docs are built in the context and copied to
``<reports>/validation/``. Great Expectations is imported only here (it takes seconds to import).
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from .paths import PROJECT_DIR
from .settings import RacesTable

DATASOURCE = "racemap_postgres"
URL_VARIABLE = "RACEMAP_GX_DATABASE_URL"
REASONS = [
    "before_openf1_coverage",
    "no_circuit_mapping",
    "no_meeting",
    "no_race_session",
    "cancelled",
    "ambiguous",
    "conflict",
    "not_yet_run",
]


@dataclass
class ValidationOutcome:
    checkpoint: str
    success: bool
    evaluated: int = 0
    failed: list[str] = field(default_factory=list)


def _context():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="file", project_root_dir=str(gx_root()))
    if context.variables.progress_bars != ProgressBarsConfig(globally=False):
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        context.variables.save()
    return gx, context


def gx_root() -> Path:
    """Where the file context lives: the project (``gx/``), or $RACEMAP_GX_ROOT (tests)."""
    return Path(os.environ.get("RACEMAP_GX_ROOT") or PROJECT_DIR)


def _table_asset(datasource, name: str, schema: str, table: str):
    try:
        asset = datasource.get_asset(name)
        if asset.table_name != table or asset.schema_name != schema:
            datasource.delete_asset(name)
            raise LookupError
    except LookupError:
        asset = datasource.add_table_asset(name=name, table_name=table, schema_name=schema)
    try:
        return asset.get_batch_definition("whole_table")
    except (KeyError, LookupError, ValueError):
        return asset.add_batch_definition_whole_table("whole_table")


def _suite(gx, context, name: str, expectations: list):
    suite = gx.ExpectationSuite(name=name, expectations=expectations)
    return context.suites.add_or_update(suite)


def _suites(gx, races: RacesTable) -> dict[str, tuple[str, str, str, list]]:
    """name -> (asset name, schema, table, expectations)."""
    E = gx.expectations
    # GX replaces {batch} with "(select ...) as subselect", so name it through a CTE.
    return {
        "raw_openf1_meetings": (
            "raw_openf1_meetings",
            "raw",
            "openf1_meetings",
            [
                E.ExpectTableRowCountToBeBetween(min_value=1),
                E.ExpectColumnValuesToNotBeNull(column="meeting_key"),
                E.ExpectColumnValuesToBeUnique(column="meeting_key"),
            ],
        ),
        "raw_openf1_sessions": (
            "raw_openf1_sessions",
            "raw",
            "openf1_sessions",
            [
                E.ExpectTableRowCountToBeBetween(min_value=1),
                E.ExpectColumnValuesToNotBeNull(column="session_key"),
                E.ExpectColumnValuesToBeUnique(column="session_key"),
                E.UnexpectedRowsExpectation(
                    description="every session's meeting_key exists in raw.openf1_meetings",
                    unexpected_rows_query=(
                        "with s as (select * from {batch})"
                        " select s.session_key, s.meeting_key from s where not exists"
                        " (select 1 from raw.openf1_meetings m where m.meeting_key = s.meeting_key)"
                    ),
                ),
            ],
        ),
        "races_openf1_keys": (
            "app_races",
            races.schema,
            races.table,
            [
                E.ExpectColumnValuesToBeUnique(column="openf1_meeting_key"),
                E.ExpectColumnValuesToBeUnique(column="openf1_session_key"),
                E.UnexpectedRowsExpectation(
                    description=(
                        "each mapped race's session is the Grand Prix race session of its meeting"
                    ),
                    unexpected_rows_query=(
                        "with r as (select * from {batch})"
                        " select r.openf1_meeting_key, r.openf1_session_key from r"
                        " where r.openf1_session_key is not null and not exists ("
                        " select 1 from raw.openf1_sessions s"
                        " where s.session_key = r.openf1_session_key"
                        " and s.meeting_key = r.openf1_meeting_key"
                        " and lower(trim(s.session_name)) = 'race')"
                    ),
                ),
            ],
        ),
        "race_openf1_mapping": (
            "race_openf1_mapping",
            "racemap",
            "race_openf1_mapping",
            [
                E.ExpectColumnValuesToNotBeNull(column="race_id"),
                E.ExpectColumnValuesToBeUnique(column="race_id"),
                E.ExpectColumnValuesToBeUnique(column="meeting_key"),
                E.ExpectColumnValuesToBeUnique(column="session_key"),
                E.ExpectColumnValuesToBeInSet(column="reason", value_set=REASONS),
            ],
        ),
    }


CHECKPOINTS = {
    "raw": ["raw_openf1_meetings", "raw_openf1_sessions"],
    "mapping": ["races_openf1_keys", "race_openf1_mapping"],
}


def _describe(result) -> list[str]:
    failed = []
    for run in result.run_results.values():
        suite = run.suite_name
        for er in run.results:
            if er.success:
                continue
            cfg = er.expectation_config
            column = cfg.kwargs.get("column")
            what = cfg.type + (f"({column})" if column else "")
            info = er.result or {}
            count = info.get("unexpected_count", info.get("observed_value"))
            if er.exception_info and er.exception_info.get("raised_exception"):
                count = "error: " + str(er.exception_info.get("exception_message", ""))[:120]
            failed.append(f"{suite}: {what}" + (f" [{count}]" if count is not None else ""))
    return failed


def run_checkpoint(
    db, name: str, races: RacesTable, reports_dir: Path, run_name: str
) -> ValidationOutcome:
    """Run checkpoint ``raw`` or ``mapping``; Data Docs are rebuilt into reports/validation."""
    os.environ[URL_VARIABLE] = db.sqlalchemy_url
    gx, context = _context()
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.core.run_identifier import RunIdentifier

    datasource = context.data_sources.add_or_update_postgres(
        name=DATASOURCE, connection_string="${" + URL_VARIABLE + "}"
    )
    definitions = []
    suites = _suites(gx, races)
    for suite_name in CHECKPOINTS[name]:
        asset_name, schema, table, expectations = suites[suite_name]
        batch = _table_asset(datasource, asset_name, schema, table)
        suite = _suite(gx, context, suite_name, expectations)
        definitions.append(
            context.validation_definitions.add_or_update(
                gx.ValidationDefinition(name=suite_name, data=batch, suite=suite)
            )
        )
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=name,
            validation_definitions=definitions,
            actions=[UpdateDataDocsAction(name="update_data_docs")],
            result_format={"result_format": "SUMMARY"},
        )
    )
    result = checkpoint.run(run_id=RunIdentifier(run_name=run_name))
    publish_docs(context, reports_dir)
    evaluated = sum(len(r.results) for r in result.run_results.values())
    return ValidationOutcome(name, bool(result.success), evaluated, _describe(result))


def publish_docs(context, reports_dir: Path) -> Path:
    """Copy the context's local Data Docs site to ``<reports>/validation``."""
    context.build_data_docs()
    site = gx_root() / "gx" / "uncommitted" / "data_docs" / "local_site"
    target = Path(reports_dir) / "validation"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(site, target)
    return target
