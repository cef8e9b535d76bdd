"""The application's results table: which relation and columns hold it (dbt vars), and what a
run says about it before ``dbt build``.

The results cross-check (``race_openf1_mapping.results_check``) compares, for every mapped race,
the car number at each classified position in the application's results with OpenF1's
``session_result`` of the race session. The table is optional: without it the check is skipped
(every race ``no_results``) and the run says so once. On the embedded demo database the bundled
Ergast results are loaded when the demo races are there and ``public.results`` is not.
"""

from __future__ import annotations

from dataclasses import dataclass

from racemap.db import Database, check_columns, quote_ident, relation_exists
from racemap.demo import create_demo_results
from racemap.settings import known_vars

# The column vars of the results table and the one each is checked for (the driver id is
# optional: an empty var leaves it out).
RESULT_COLUMN_VARS = (
    "result_race_id_column",
    "result_number_column",
    "result_position_column",
    "result_driver_id_column",
)


@dataclass(frozen=True)
class ResultsTable:
    schema: str
    table: str
    columns: dict[str, str]

    @classmethod
    def from_vars(cls, variables: dict | None) -> ResultsTable:
        merged = {**known_vars(), **(variables or {})}
        return cls(
            merged["results_schema"],
            merged["results_table"],
            {var: merged[var] for var in RESULT_COLUMN_VARS if merged.get(var)},
        )

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.table}"


def prepare_results(db: Database, variables: dict | None, log=print) -> str | None:
    """Before ``dbt build``: the demo results on the embedded database; the results table's
    columns checked (one clear line when a var names a missing column). Returns the line a run
    prints when the results check is skipped (no results table, or one this role cannot read),
    else None. ``variables`` (the run's own dict) loses the driver column when the table has
    none and no var named it: the driver link is skipped, with one line."""
    results = ResultsTable.from_vars(variables)
    with db.transaction() as conn:
        if not relation_exists(conn, results.schema, results.table):
            if (
                db.embedded
                and (results.schema, results.table) == ("public", "results")
                and relation_exists(conn, "public", "races")
                and relation_exists(conn, "public", "circuits")
                and not relation_exists(conn, "public", "drivers")
            ):
                count = create_demo_results(conn)
                log(f"created the demo tables public.results ({count} results) and public.drivers")
                return None
            note = (
                f"results check skipped: no table {results.name} (set --var results_schema=... "
                "--var results_table=... to check each mapping against the application's results)"
            )
            log(note)
            return note
        with conn.cursor() as cur:
            relation = f"{quote_ident(results.schema)}.{quote_ident(results.table)}"
            cur.execute("select current_user, has_table_privilege(%s, 'SELECT')", (relation,))
            role, may_read = cur.fetchone()
        if not may_read:  # optional: skipped (stg_app__results reads it as absent), one line
            note = (
                f"results check skipped: this role cannot read {results.name} (grant select on "
                f"{results.name} to {role} to check each mapping against the results)"
            )
            log(note)
            return note
        columns = dict(results.columns)
        if _default_driver_column_missing(conn, results, variables):
            # The driver id is optional: without its column the driver link is left out.
            log(
                f"driver link skipped: {results.name} has no column "
                f"{columns.pop('result_driver_id_column')} (name it with --var "
                "result_driver_id_column=...)"
            )
            if variables is not None:
                variables["result_driver_id_column"] = ""
        check_columns(conn, results.schema, results.table, columns)
    return None


def _default_driver_column_missing(conn, results: ResultsTable, variables: dict | None) -> bool:
    """The driver column is the project's default (no --var named it) and the table lacks it."""
    column = results.columns.get("result_driver_id_column")
    if not column or "result_driver_id_column" in (variables or {}):
        return False
    with conn.cursor() as cur:
        cur.execute(
            "select 1 from pg_catalog.pg_attribute where attrelid = %s::regclass"
            " and attname = %s and attnum > 0 and not attisdropped",
            (f"{quote_ident(results.schema)}.{quote_ident(results.table)}", column),
        )
        return cur.fetchone() is None
