"""Run options in one place, parsed and validated before anything runs: every environment
variable racemap reads (:class:`Environment`, the one definition the README's table is generated
from), the dbt vars (which relation and columns hold the application's races, and the rules), the
seasons; and the one function that writes the environment of the tools that read only it
(:func:`tool_environment`)."""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Literal

from psycopg2 import sql
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from racemap.errors import RacemapError, UsageError
from racemap.paths import PROJECT_DIR

DEFAULT_OPENF1_URL = "https://api.openf1.org/v1"

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
# Vars that name a schema, a relation or a column (by the ending of the var's name).
_NAME_SUFFIXES = ("_schema", "_table", "_column")
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
        # dbt-postgres writes an identifier between double quotes without doubling one inside
        # (adapter.quote, a source's relation): such a name would break dbt's SQL, so it is
        # refused here. Every other character, single quotes and upper case included, works.
        if name.endswith(_NAME_SUFFIXES) and '"' in str(value or ""):
            raise UsageError(
                f"--var {name}: racemap cannot name a relation or column whose name holds a"
                " double quote (dbt does not escape it); rename it"
            )
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

    def as_vars(self) -> dict[str, str]:
        """The vars that name it (``races_schema``, ``races_table``, ``race_id_column``): what a
        notebook that reads the races table is given (:meth:`from_vars` reads them back)."""
        return {
            "races_schema": self.schema,
            "races_table": self.table,
            "race_id_column": self.id_column,
        }


@contextmanager
def temporary_environ(**values: str | None):
    """Set environment variables for the block only (a None value leaves that one as is)."""
    with _environ({k: v for k, v in values.items() if v is not None}):
        yield


@contextmanager
def _environ(values: dict[str, str | None]):
    """Set (a value) or remove (None) each variable for the block; restore them after."""
    saved = {k: os.environ.get(k) for k in values}
    try:
        _write(values)
        yield
    finally:
        _write(saved)


def _write(values: dict[str, str | None]) -> None:
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


# Nothing is reported to dbt Labs or Great Expectations.
ANALYTICS_OPT_OUTS = {
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "DO_NOT_TRACK": "1",
    "GX_ANALYTICS_ENABLED": "false",
}
GX_URL_VARIABLE = "RACEMAP_GX_DATABASE_URL"  # the GX data source's ${...}: never saved


def tool_environment(db=None, state: Path | None = None) -> dict[str, str | None]:
    """The environment of the tools that read only their environment, in one place: the
    analytics opt-outs; with ``db``, its libpq variables (dbt's profiles.yml, papermill kernels,
    psql; None removes one) and the Great Expectations data source's URL; with ``state`` (the
    database's state directory), dbt's target and log paths."""
    env: dict[str, str | None] = dict(ANALYTICS_OPT_OUTS)
    if db is not None:
        env.update(db.env_changes())
        env[GX_URL_VARIABLE] = db.sqlalchemy_url
    if state is not None:
        env.update(
            DBT_TARGET_PATH=str(Path(state) / "target"), DBT_LOG_PATH=str(Path(state) / "logs")
        )
    return env


@contextmanager
def tools_environment(db=None, state: Path | None = None):
    """:func:`tool_environment` written into this process's environment for the block (the
    tools run in it, or are started from it), and what was there before restored after."""
    with _environ(tool_environment(db, state)):
        yield


def http_url(text: str) -> str:
    """``text`` when it is an http(s) URL with a host (OpenF1's, a webhook's), else ValueError
    (whose message never repeats the URL: it may carry a token)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(text)
        # .port is read when asked: a port out of 0-65535 failed the webhook's POST after a run
        ok = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
        ok = ok and parts.port != 0
    except ValueError:  # a port that is not a number, or out of range
        ok = False
    if not ok:
        raise ValueError("not an http(s) URL with a host")
    return text


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


# -- the environment ---------------------------------------------------------------------------
def _hint(text: str) -> dict:
    """A field's hint: what to give, said after ``NAME='value':`` when a value is bad."""
    return {"hint": text}


def _days(default: float, alias: str, description: str):
    """A field holding a number of days, 0 or more and finite; its hint's example is the default."""
    return Field(
        default,
        alias=alias,
        ge=0,
        allow_inf_nan=False,
        description=description,
        json_schema_extra=_hint(f"give a number of days, e.g. {default:g}"),
    )


class Environment(BaseModel):
    """Every environment variable racemap reads, typed and defaulted: loaded once at the edge
    (:func:`load_environment`: the CLI before any command runs, a run or a notebook when called
    as a library), then passed down as a value. An empty variable counts as unset."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    database_url: str | None = Field(
        None,
        alias="DATABASE_URL",
        repr=False,
        description="the database (every libpq option of the URL is kept); unset: the embedded "
        "PostgreSQL in `.racemap/pgdata`",
    )
    openf1_url: str = Field(
        DEFAULT_OPENF1_URL,
        alias="OPENF1_URL",
        repr=False,  # a self-hosted OpenF1's URL may carry a password
        description=f"OpenF1's base URL (default `{DEFAULT_OPENF1_URL}`)",
        json_schema_extra=_hint("give an http(s):// URL, e.g. https://api.openf1.org/v1"),
    )
    openf1_username: str = Field(
        "",
        alias="OPENF1_USERNAME",
        repr=False,
        description="an OpenF1 account, with `OPENF1_PASSWORD` (OAuth2 token; needed during "
        "live sessions)",
    )
    openf1_password: str = Field(
        "",
        alias="OPENF1_PASSWORD",
        repr=False,
        description="the OpenF1 account's password (never printed, saved or sent)",
    )
    openf1_rate_limit: tuple[int, float] = Field(
        (30, 10.0),
        alias="OPENF1_RATE_LIMIT",
        description="requests per seconds, default `30/10`",
        json_schema_extra=_hint("give requests/seconds, e.g. 30/10"),
    )
    openf1_retry_seconds: float = Field(
        120.0,
        alias="OPENF1_RETRY_SECONDS",
        gt=0,
        allow_inf_nan=False,
        description="time budget of a fetch's retries, default 120",
        json_schema_extra=_hint("give a positive number of seconds, e.g. 120"),
    )
    openf1_settle_days: float = _days(
        14.0,
        "OPENF1_SETTLE_DAYS",
        "days after a season's last session (a session's end for `racemap sync`) "
        "that it is fetched again for corrections, default 14",
    )
    racemap_notify_url: str | None = Field(
        None,
        alias="RACEMAP_NOTIFY_URL",
        repr=False,
        description="the webhook of `racemap run` and `racemap sync` (as `--notify-url`): told "
        "of a run needing attention, failing or changing something, and of a sync needing "
        "attention or failing",
        json_schema_extra=_hint("give an http(s):// URL"),
    )
    racemap_freshness_warn_days: float = _days(
        3.0,
        "RACEMAP_FRESHNESS_WARN_DAYS",
        "in season, raw data last fetched live longer ago than this is `warn`, default 3",
    )
    racemap_freshness_error_days: float = _days(
        8.0,
        "RACEMAP_FRESHNESS_ERROR_DAYS",
        "... and `error` (a run and `racemap status` say attention), default 8",
    )
    racemap_data_docs_runs: int = Field(
        20,
        alias="RACEMAP_DATA_DOCS_RUNS",
        ge=1,
        description="how many runs' validations the Data Docs of a database keep, default 20",
        json_schema_extra=_hint("give a whole number of runs, 1 or more"),
    )
    racemap_state_dir: Path = Field(
        PROJECT_DIR / ".racemap" / "state",
        alias="RACEMAP_STATE_DIR",
        description="where per-database local state lives (dbt target and logs, the GX "
        "context), default `.racemap/state`",
    )
    racemap_dbt_project_dir: Path = Field(
        PROJECT_DIR,
        alias="RACEMAP_DBT_PROJECT_DIR",
        description="a copy of the dbt project to run instead of this one (e.g. with other "
        "seeds; the tests use it)",
    )
    dbt_target: str = Field(
        "default",
        alias="DBT_TARGET",
        description="dbt's own: the target of racemap's `profiles.yml` (default `default`, its "
        "one output); one it does not have, set for another dbt project, is a usage error "
        "before anything runs",
    )
    dbt_log_level_file: Literal["debug", "info", "warn", "error", "none"] = Field(
        "info",
        alias="DBT_LOG_LEVEL_FILE",
        description="dbt's own: the level of `dbt.log` in the database's state directory; "
        "racemap's default `info` (a line a node, errors in full); `debug`, dbt's default, adds "
        "every SQL statement and connection and costs a warm build about a tenth",
        json_schema_extra=_hint("give debug, info, warn, error or none"),
    )
    racemap_bench_reference_races: int | None = Field(
        None,
        alias="RACEMAP_BENCH_REFERENCE_RACES",
        ge=1,
        description="`racemap bench`: the per-race reference of the request counts fetches "
        "only the first N races and extrapolates (default: all of them)",
        json_schema_extra=_hint("give a whole number of races"),
    )
    racemap_debug: bool = Field(
        False,
        alias="RACEMAP_DEBUG",
        description="set to `1` to see the traceback of an unexpected error instead of its "
        "one line",
        json_schema_extra=_hint("give 1 or 0"),
    )
    ci: bool = Field(
        False,
        alias="CI",
        description="set by CI services: the load's progress bar is off",
        json_schema_extra=_hint("give true or false"),
    )

    @field_validator("openf1_url", "racemap_notify_url")
    @classmethod
    def _http_url(cls, value):
        return value if value is None else http_url(value)

    @field_validator("dbt_log_level_file", mode="before")
    @classmethod
    def _level(cls, value):
        return value.lower() if isinstance(value, str) else value  # dbt takes any case

    @field_validator("openf1_rate_limit", mode="before")
    @classmethod
    def _rate_limit(cls, value):
        if isinstance(value, str):
            requests, _, seconds = value.partition("/")
            value = (int(requests), float(seconds))  # a ValueError when it is not N/S
        if value[0] < 1 or not value[1] > 0:
            raise ValueError("not requests/seconds")
        return value

    def openf1_credentials(self) -> tuple[str, str] | None:
        """(username, password); None for anonymous access."""
        return (self.openf1_username, self.openf1_password) if self.openf1_username else None

    def secrets(self, db=None) -> list[str]:
        """What no report or message may show: the database's password (``db``, a racemap
        Database, when there is one) and OpenF1's account and password."""
        found = [
            db.password if db is not None else None,
            self.openf1_username,
            self.openf1_password,
        ]
        return [s for s in found if s]


# Variables racemap does not read but writes for the tools that read only their environment
# (dbt's profiles, a papermill kernel, Great Expectations), or that its scripts read.
TOOL_VARIABLES = (
    (
        "`PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`, ...",
        "what `profiles.yml` and psql read; racemap sets them from `DATABASE_URL` for dbt, "
        "Great Expectations and the kernels. Alone they choose no database for racemap: "
        "`DATABASE_URL=postgresql://` takes the whole connection from them (unset, the "
        "embedded PostgreSQL, and a line says so when they name another)",
    ),
    (
        "`RACEMAP_PGKEEPALIVES_IDLE`",
        "what `profiles.yml` reads for dbt's `keepalives_idle`; racemap sets it from the URL's "
        "`keepalives_idle` option (default 0)",
    ),
    (
        "`RACEMAP_GX_DATABASE_URL`",
        "the Great Expectations data source's connection string, set in the checks' process "
        "only (the context stores `${RACEMAP_GX_DATABASE_URL}`, never the secret)",
    ),
    (
        "`DBT_TARGET_PATH`, `DBT_LOG_PATH`",
        "dbt's own: a run sets them to its database's state directory",
    ),
    (
        "`DBT_SEND_ANONYMOUS_USAGE_STATS`, `DO_NOT_TRACK`, `GX_ANALYTICS_ENABLED`",
        "set off by racemap and the Makefile: nothing is reported to dbt Labs or Great "
        "Expectations",
    ),
    (
        "`RACEMAP_TEST_DATABASE_URL`",
        "the PostgreSQL server of `make test` (scripts/test_server.py)",
    ),
)


def environment_table() -> list[str]:
    """The README's table of environment variables, as markdown lines: every variable
    :class:`Environment` reads, in its order, then those written for the tools."""
    rows = [(f"`{f.alias}`", f.description) for f in Environment.model_fields.values()]
    return [
        "| variable | what it does |",
        "| --- | --- |",
        *(f"| {name} | {what} |" for name, what in [*rows, *TOOL_VARIABLES]),
    ]


def profile_targets(project_dir: Path) -> list[str]:
    """The targets (outputs) of the racemap profile in ``project_dir``'s ``profiles.yml``;
    none when it cannot be read (dbt then says what is wrong with it)."""
    import yaml

    try:
        profile = yaml.safe_load((Path(project_dir) / "profiles.yml").read_text("utf-8"))
        return list(profile["racemap"]["outputs"])
    except (OSError, ValueError, TypeError, KeyError, yaml.YAMLError):
        return []


def load_environment(environ=None) -> Environment:
    """:class:`Environment` from ``environ`` (default: this process's), validated: a UsageError
    (exit 2) names the first bad variable and what to give, in one line."""
    environ = os.environ if environ is None else environ
    given = {}
    for info in Environment.model_fields.values():
        text = (environ.get(info.alias) or "").strip()
        if text:
            given[info.alias] = text
    try:
        env = Environment.model_validate(given)
    except ValidationError as exc:
        error = exc.errors()[0]
        info = Environment.model_fields[
            next(n for n, f in Environment.model_fields.items() if f.alias == error["loc"][0])
        ]
        hint = (info.json_schema_extra or {}).get("hint", "see the README's environment table")
        # A URL or a password may hold a secret: named, never shown.
        shown = f"={given.get(info.alias, '')!r}" if info.repr else ""
        raise UsageError(f"{info.alias}{shown}: {hint}") from None
    if env.database_url:
        from racemap.db import parse_database_url

        try:
            parse_database_url(env.database_url)  # its errors never show the password
        except RacemapError as exc:
            raise UsageError(str(exc)) from None
    if bool(env.openf1_username) != bool(env.openf1_password):
        missing = "OPENF1_PASSWORD" if env.openf1_username else "OPENF1_USERNAME"
        raise UsageError(
            f"{missing} is empty or unset: set both OPENF1_USERNAME and OPENF1_PASSWORD, "
            "or neither for anonymous access"
        )
    targets = profile_targets(env.racemap_dbt_project_dir)
    if targets and env.dbt_target not in targets:
        raise UsageError(
            f"DBT_TARGET={env.dbt_target!r}: racemap's profiles.yml has no such target (it has "
            f"{', '.join(targets)}): unset DBT_TARGET in this shell, or name one of those"
        )
    if env.racemap_freshness_error_days < env.racemap_freshness_warn_days:
        raise UsageError(
            f"RACEMAP_FRESHNESS_ERROR_DAYS={env.racemap_freshness_error_days:g} is below "
            f"RACEMAP_FRESHNESS_WARN_DAYS={env.racemap_freshness_warn_days:g}: give error >= warn"
        )
    return env
