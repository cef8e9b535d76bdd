"""The application's schema and table names are its own: racemap quotes them wherever it names
them, in identifiers and in string literals alike, so any name PostgreSQL allows works."""

from __future__ import annotations

import pytest
from conftest import query, run_pipeline

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
