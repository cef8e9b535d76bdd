"""Run options in one place: the dbt vars (which relation and columns hold the application's
races, and the rules), parsed and validated before anything runs."""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

from psycopg2 import sql

from racemap.errors import UsageError
from racemap.paths import PROJECT_DIR

DEFAULT_COVERAGE_THRESHOLD = 1.0
FIRST_SEASON = 2023  # the first season OpenF1 covers (https://openf1.org)
# Vars naming a relation or column that must be given; the other names may be empty (none).
REQUIRED_NAMES = {
    "races_schema",
    "races_table",
    "race_id_column",
    "race_circuit_column",
    "race_date_column",
}
_ISO_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}(:?\d{2})?)?$"
)


@cache
def known_vars() -> dict:
    """The project's vars and their defaults: ``vars:`` of dbt_project.yml, the one list."""
    import yaml

    project = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))
    return dict(project.get("vars") or {})


def parse_vars(pairs: list[str] | None) -> dict[str, str]:
    """``["NAME=VALUE", ...]`` from ``--var`` into a dict, validated (:func:`validate_vars`)."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--var {pair!r}: write it as NAME=VALUE")
        out[name.strip()] = value.strip()
    return validate_vars(out)


def _number(name: str, value, low: float, high: float, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not low <= number <= high:  # also false for nan
        raise UsageError(f"--var {name}={value}: give {what}")
    return number


def validate_vars(variables: dict | None) -> dict:
    """Every var known, every value usable; a UsageError (exit 2) names the first that is not.

    Checked here, before anything runs, so a bad value never reaches dbt halfway through a run.
    """
    variables = dict(variables or {})
    known = known_vars()
    unknown = sorted(set(variables) - set(known))
    if unknown:
        raise UsageError(
            f"unknown var {', '.join(unknown)}: the vars are {', '.join(sorted(known))}"
        )
    for name, value in variables.items():
        if name in REQUIRED_NAMES and not str(value or "").strip():
            raise UsageError(f"--var {name}= is empty: name the relation or column")
    if "match_tolerance_hours" in variables:
        _number(
            "match_tolerance_hours",
            variables["match_tolerance_hours"],
            1,
            96,
            "a number of hours from 1 to 96 (races at one circuit are a week apart)",
        )
    if "openf1_first_season" in variables:
        value = variables["openf1_first_season"]
        if not str(value).isdigit() or not 1950 <= int(value) <= 2100:
            raise UsageError(f"--var openf1_first_season={value}: give a year, e.g. 2023")
    if "coverage_threshold" in variables:
        coverage_threshold(variables)
    as_of = variables.get("as_of")
    if as_of not in (None, "", "null") and not _ISO_TIME.match(str(as_of)):
        raise UsageError(
            f"--var as_of={as_of}: give an ISO date or timestamp, e.g. 2026-11-25 or "
            "2026-11-25T12:00:00Z"
        )
    return variables


def coverage_threshold(variables: dict | None) -> float:
    """The ``coverage_threshold`` var (a share of races, 0..1), default 1.0."""
    value = (variables or {}).get("coverage_threshold", DEFAULT_COVERAGE_THRESHOLD)
    return _number("coverage_threshold", value, 0, 1, "a share between 0 and 1")


@dataclass(frozen=True)
class RacesTable:
    schema: str
    table: str
    id_column: str

    @classmethod
    def from_vars(cls, variables: dict | None) -> RacesTable:
        merged = {**known_vars(), **(variables or {})}
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


def parse_seasons(text: str | None, today: datetime | None = None) -> list[int]:
    """``"2023-2025"``, ``"2024"`` or ``"2023,2025"``; default every season 2023..this year."""
    this_year = (today or datetime.now(UTC)).year
    if not text:
        return list(range(FIRST_SEASON, this_year + 1))
    seasons: set[int] = set()
    try:
        for part in str(text).split(","):
            part = part.strip()
            if "-" in part:
                low, high = (int(p) for p in part.split("-", 1))
                if low > high:
                    raise ValueError
                seasons.update(range(low, high + 1))
            else:
                seasons.add(int(part))
    except ValueError:
        raise UsageError(
            f"--seasons {text!r}: give a year, a range like 2023-2025, or a list"
        ) from None
    if min(seasons) < 1950 or max(seasons) > this_year + 1:
        raise UsageError(f"--seasons {text!r}: seasons must lie between 1950 and {this_year + 1}")
    return sorted(seasons)
