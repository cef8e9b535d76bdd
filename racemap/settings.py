"""Which relation and columns hold the application's races: the dbt vars, with defaults."""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass

from psycopg2 import sql

from .errors import RacemapError

DEFAULT_VARS = {
    "races_schema": "public",
    "races_table": "races",
    "race_id_column": "id",
    "race_circuit_column": "circuit_id",
    "race_date_column": "date",
    "race_time_column": "time",
    "race_name_column": "name",
    "race_round_column": "round",
    # The application's results (optional; racemap/results.py): Ergast-shaped by default.
    "results_schema": "public",
    "results_table": "results",
    "result_race_id_column": "race_id",
    "result_number_column": "number",
    "result_position_column": "position",
    "result_driver_id_column": "driver_id",
}


def parse_vars(pairs: list[str] | None) -> dict[str, str]:
    """``["NAME=VALUE", ...]`` from ``--var`` into a dict (values stay strings for dbt)."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise RacemapError(f"--var {pair!r}: write it as NAME=VALUE")
        out[name.strip()] = value
    return out


@dataclass(frozen=True)
class RacesTable:
    schema: str
    table: str
    id_column: str

    @classmethod
    def from_vars(cls, variables: dict | None) -> RacesTable:
        merged = {**DEFAULT_VARS, **(variables or {})}
        return cls(merged["races_schema"], merged["races_table"], merged["race_id_column"])

    @property
    def relation(self) -> sql.Composed:
        return sql.SQL("{}.{}").format(sql.Identifier(self.schema), sql.Identifier(self.table))

    @property
    def id(self) -> sql.Identifier:
        return sql.Identifier(self.id_column)

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.table}"


@contextmanager
def temporary_environ(**values: str | None):
    """Set environment variables for the block only (a None value leaves that one as is)."""
    saved = {k: os.environ.get(k) for k, v in values.items() if v is not None}
    os.environ.update({k: v for k, v in values.items() if v is not None})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
