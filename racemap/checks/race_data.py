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
from racemap.errors import printable

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
    return printable(  # the race's and driver's ids are the application's text, OpenF1's acronym
        f"race {row['race_id']} ({row['session_kind']}): {driver} (car {row['driver_number']}"
        f"{acronym}): {row['check_name']}: {row['detail']}"
    )


def failed_checks(db) -> list[dict]:
    """The rows of racemap.race_data_checks, as dicts."""
    with db.transaction() as conn:
        return failed_check_rows(conn)


def failed_check_rows(conn) -> list[dict]:
    """The rows of racemap.race_data_checks on ``conn`` ([] before the race data marts are
    built: no sync yet); ``racemap status`` says each as attention."""
    with conn.cursor() as cur:
        cur.execute("select to_regclass('racemap.race_data_checks') is not null")
        if not cur.fetchone()[0]:
            return []
        cur.execute(CHECKS_QUERY)
        columns = [d.name for d in cur.description]
        return [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]


def run_checkpoint(
    db, reports_dir: Path, run_name: str, gx_root: Path, keep_runs: int = validate.DATA_DOCS_RUNS
) -> ValidationOutcome:
    """Run checkpoint ``race_data``; Data Docs go to ``<reports_dir>/validation``. The attention
    lines name each failed check's race and driver (read from racemap.race_data_checks)."""
    from racemap.settings import tools_environment

    # The data source reads its URL from the environment: written for the checkpoint only.
    with tools_environment(db):
        gx, context = validate._context(gx_root)
        outcome = validate.run_suites(
            gx, context, CHECKPOINT, _suites(gx), reports_dir, run_name, gx_root, keep_runs
        )
    if outcome.attention:  # the checks' own rows, one line per race and driver
        outcome.attention = [attention_line(row) for row in failed_checks(db)] or outcome.attention
    return outcome
