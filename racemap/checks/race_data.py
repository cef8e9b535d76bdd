"""The race data checks of ``racemap sync``: a Great Expectations checkpoint ``race_data``.

Two expectations, after ``dbt build --select tag:race_data``:

- racemap.race_laps has one row per (race, session, driver, lap) (its failure fails the sync:
  the marts are wrong, not the data);
- racemap.race_data_checks is empty: its rows are the failed checks of the race data (stints
  that overlap or leave laps uncovered, pit stops off the laps driven, final positions and lap
  counts that disagree with the results; models/marts/race_data/race_data_checks.sql). A row
  is attention in the verdict, one line naming the race, the session and the driver.

Nothing synced, nothing to check: both tables are empty and both expectations pass.
"""

from __future__ import annotations

from pathlib import Path

from racemap.checks import validate
from racemap.checks.validate import ATTENTION, ValidationOutcome

CHECKPOINT = "race_data"
CHECKS_QUERY = (
    "select race_id, session_kind, driver_id, driver_number, name_acronym, check_name, detail"
    " from racemap.race_data_checks"
    " order by race_id, session_kind, driver_number, check_name, detail"
)


def _suites(gx) -> dict:
    """name -> (asset name, schema, table, expectations), as validate._suites."""
    E = gx.expectations
    return {
        "race_laps": (
            "race_laps",
            "racemap",
            "race_laps",
            [
                E.ExpectCompoundColumnsToBeUnique(
                    column_list=["race_id", "session_kind", "driver_number", "lap_number"],
                    description="one row per race, session, driver and lap",
                ),
            ],
        ),
        "race_data_checks": (
            "race_data_checks",
            "racemap",
            "race_data_checks",
            [
                E.UnexpectedRowsExpectation(
                    description=(
                        "the race data agrees with itself and with the results: stints do not "
                        "overlap and cover the laps driven, pit stops fall on laps driven, "
                        "classified cars' final positions and lap counts match the results"
                    ),
                    unexpected_rows_query=(
                        "with c as (select * from {batch})"
                        " select c.race_id, c.session_kind, c.driver_id, c.driver_number,"
                        " c.check_name, c.detail from c"
                    ),
                    meta=ATTENTION,
                ),
            ],
        ),
    }


def attention_line(row: dict) -> str:
    """One line per failed check: the race, the session, the driver, what is wrong."""
    driver = f"driver {row['driver_id']}" if row.get("driver_id") else "driver (no id)"
    acronym = f" {row['name_acronym']}" if row.get("name_acronym") else ""
    return (
        f"race {row['race_id']} ({row['session_kind']}): {driver} (car {row['driver_number']}"
        f"{acronym}): {row['check_name']}: {row['detail']}"
    )


def failed_checks(db) -> list[dict]:
    """The rows of racemap.race_data_checks, as dicts."""
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(CHECKS_QUERY)
        columns = [d.name for d in cur.description]
        return [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]


def run_checkpoint(db, reports_dir: Path, run_name: str, gx_root: Path) -> ValidationOutcome:
    """Run checkpoint ``race_data``; Data Docs go to ``<reports_dir>/validation``. The attention
    lines name each failed check's race and driver (read from racemap.race_data_checks)."""
    from racemap.settings import tools_environment

    # The data source reads its URL from the environment: written for the checkpoint only.
    with tools_environment(db):
        return _run_checkpoint(db, reports_dir, run_name, gx_root)


def _run_checkpoint(db, reports_dir: Path, run_name: str, gx_root: Path) -> ValidationOutcome:
    gx, context = validate._context(gx_root)
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.core.run_identifier import RunIdentifier

    datasource = context.data_sources.add_or_update_postgres(
        name=validate.DATASOURCE, connection_string="${" + validate.URL_VARIABLE + "}"
    )
    definitions = []
    for suite_name, (asset_name, schema, table, expectations) in _suites(gx).items():
        batch = validate._table_asset(datasource, asset_name, schema, table)
        suite = validate._suite(gx, context, suite_name, expectations)
        definitions.append(
            context.validation_definitions.add_or_update(
                gx.ValidationDefinition(name=suite_name, data=batch, suite=suite)
            )
        )
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=CHECKPOINT,
            validation_definitions=definitions,
            actions=[UpdateDataDocsAction(name="update_data_docs")],
            result_format={"result_format": "SUMMARY"},
        )
    )
    validate.prune_validations(run_name, gx_root)
    result = checkpoint.run(run_id=RunIdentifier(run_name=run_name))
    validate.publish_docs(context, gx_root, reports_dir, rebuild=False)
    evaluated = sum(len(r.results) for r in result.run_results.values())
    failed, attention = validate._describe(result)
    if attention:  # the checks' own rows, one line per race and driver
        attention = [attention_line(row) for row in failed_checks(db)] or attention
    return ValidationOutcome(CHECKPOINT, not failed, evaluated, failed, run_name, attention)
