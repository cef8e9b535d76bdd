"""The application's schema and table names are its own: racemap quotes them wherever it names
them, in identifiers and in string literals alike, so any name PostgreSQL allows works."""

from __future__ import annotations

import pytest
from conftest import query, run_pipeline
from psycopg2 import sql

from racemap.cli import main as cli_main
from racemap.mapping.lookup import race_keys
from racemap.settings import RacesTable

SCHEMA = "app's"
TABLE = "GP's Table"
VARIABLES = {"races_schema": SCHEMA, "races_table": TABLE}


def test_a_races_table_named_with_a_quote_migrates_and_maps(demo_db, tmp_path):
    """racemap migrate pasted the table's name into the literal '"public"."GP's Table"'::regclass
    (unterminated quoted identifier); dbt's listing of the schema's relations and the lookup
    functions' error message did the same with the schema and the table."""
    with demo_db.transaction() as conn, conn.cursor() as cur:
        cur.execute(
            """create schema "app's";
            create table "app's"."GP's Table" as
            select id, circuit_id, name, date, time, round from public.races where year = 2024"""
        )
    var_args = [arg for name, value in VARIABLES.items() for arg in ("--var", f"{name}={value}")]
    assert cli_main(["migrate", "--database-url", demo_db.url, *var_args]) == 0
    assert cli_main(["migrate", "--database-url", demo_db.url, *var_args]) == 0  # idempotent
    assert query(
        demo_db,
        "select count(*) from pg_constraint"
        """ where conrelid = '"app''s"."GP''s Table"'::regclass and contype = 'u'""",
    ) == [(2,)]

    result = run_pipeline(demo_db, tmp_path, seasons="2024", variables=VARIABLES)
    assert (result.verdict, result.summary["mapped"]) == ("ok", 24)
    with demo_db.transaction() as conn:
        keys = race_keys(conn, "1121", RacesTable.from_vars(VARIABLES))  # Bahrain 2024
        assert (keys.meeting_key, keys.session_key) == (1229, 9472)
    message = """no race with id nope in "app's"."GP's Table\""""
    with pytest.raises(Exception, match=message):
        query(demo_db, "select racemap.meeting_key_for_race('nope')")


def test_a_races_table_in_a_mixed_case_schema_validates(demo_db, tmp_path):
    """Great Expectations lowercased a schema name given bare (`App` became `app`, which does not
    exist), so the validation of a races table in schema `App` (an ORM's PascalCase names) failed
    and no run could end ok."""
    schema, table = "App", "GrandPrix"
    with demo_db.transaction() as conn, conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "create schema {schema}; create table {schema}.{table} as"
                " select id, circuit_id, name, date, time, round from public.races"
                " where year = 2024"
            ).format(schema=sql.Identifier(schema), table=sql.Identifier(table))
        )
    variables = {"races_schema": schema, "races_table": table}
    var_args = [arg for name, value in variables.items() for arg in ("--var", f"{name}={value}")]
    assert cli_main(["migrate", "--database-url", demo_db.url, *var_args]) == 0
    result = run_pipeline(demo_db, tmp_path, seasons="2024", variables=variables)
    assert (result.verdict, result.summary["mapped"]) == ("ok", 24)
    assert cli_main(["validate", "--database-url", demo_db.url, *var_args]) == 0


@pytest.mark.parametrize("var", ["races_table", "races_schema", "result_driver_id_column"])
def test_a_name_with_a_double_quote_is_a_usage_error(var, capsys):
    """dbt-postgres does not double a `"` inside an identifier it quotes: such a name is refused
    before anything runs, in one line, exit 2 (it failed halfway through a run in dbt's SQL)."""
    code = cli_main(["run", "--offline", "--var", f'{var}=GP "Table"'])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"racemap: --var {var}: racemap cannot name a relation or column whose name holds a"
        " double quote (dbt does not escape it); rename it"
    ]
