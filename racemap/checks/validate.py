"""Great Expectations checkpoints over the raw tables, the races table and the mapping.

The file context is (re)built by code on every run, get-or-create, so it can be re-run and
reviewed. A run keeps it in its database's state directory (``<state>/gx-root/gx``,
racemap.runtime.database_state), so runs on different databases never share it; called without
a root (the tests), it is the project's ``gx/``. The connection string is stored as
``${RACEMAP_GX_DATABASE_URL}``: the secret is in this process's environment while a checkpoint
runs (racemap.settings.tools_environment), never in a file. Analytics and progress bars are off.

Two checkpoints:

- ``raw`` (before ``dbt build``): the OpenF1 tables' keys are unique and not null, every session's
  meeting exists, and every loaded season has rows;
- ``mapping`` (after the apply): both key columns of the races table are unique among the non-null
  values, each mapped race's (meeting, session) is the Grand Prix race session of that meeting,
  the mapping's reasons are the fixed words, and the coverage of each season within OpenF1's
  coverage (``racemap.mapping_coverage``) is at or above the ``coverage_threshold`` var.

Data Docs are rendered self-contained (no CDN: the pages open offline without console errors) and
copied to ``<reports>/validation/``. Great Expectations is imported only here (it takes seconds);
``racemap run`` runs these checkpoints in its GX worker process (racemap/checks/gx_worker.py).
"""

from __future__ import annotations

import csv
import logging
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from racemap import verdict as verdicts
from racemap.db import connection_error, quote_ident, server_message
from racemap.errors import RacemapError
from racemap.openf1 import endpoints
from racemap.paths import PROJECT_DIR
from racemap.settings import (
    DEFAULT_COVERAGE_THRESHOLD,
    GX_URL_VARIABLE,
    Environment,
    RacesTable,
    tools_environment,
)

DATASOURCE = "racemap_postgres"
URL_VARIABLE = GX_URL_VARIABLE
VALIDATION_RESULTS_SHOWN = 30  # the Data Docs index lists the newest validation results only
# RACEMAP_DATA_DOCS_RUNS's default: how many runs' validations the Data Docs keep.
DATA_DOCS_RUNS = Environment.model_fields["racemap_data_docs_runs"].default
# Expectations whose failure means "a race needs a person" (verdict attention, exit 3), not that
# the data or the mapping is broken (verdict failed, exit 1): marked in their meta.
ATTENTION = {"verdict": verdicts.ATTENTION}


def reason_words() -> list[str]:
    """The fixed unmapped reason words: seeds/unmapped_reasons.csv, the one list."""
    with (PROJECT_DIR / "seeds" / "unmapped_reasons.csv").open(encoding="utf-8") as handle:
        return [row["reason"] for row in csv.DictReader(handle)]


@dataclass
class ValidationOutcome:
    checkpoint: str
    success: bool
    evaluated: int = 0
    failed: list[str] = field(default_factory=list)  # expectations whose failure fails the run
    run_name: str = ""
    attention: list[str] = field(default_factory=list)  # failed expectations naming races

    @property
    def passed(self) -> bool:
        """Every expectation met."""
        return self.success and not self.attention


def _run_key(run_name: str) -> str:
    """The run a validation belongs to: ``<run id>-raw`` and ``<run id>-mapping`` are one."""
    for suffix in ("-raw", "-mapping"):
        if run_name.endswith(suffix):
            return run_name[: -len(suffix)]
    return run_name


def prune_validations(
    current_run_name: str, root: Path = PROJECT_DIR, keep_runs: int = DATA_DOCS_RUNS
) -> list[str]:
    """Keep the validation results (and their rendered pages) of the newest ``keep_runs`` runs.

    The context is this database's own (runtime.database_state), so this is this database's
    history. GX keeps results as ``uncommitted/validations/<suite>/<run name>/<run time>/`` and
    renders them under ``uncommitted/data_docs/local_site/validations/`` with the same path;
    called before a checkpoint runs, so the index built after it lists only what is kept.
    Returns the runs removed.
    """
    base = root / "gx" / "uncommitted"
    stores = [base / "validations", base / "data_docs" / "local_site" / "validations"]
    newest: dict[str, float] = {}
    dirs: dict[str, list[Path]] = {}
    for store in stores:
        if not store.is_dir():
            continue
        for run_dir in store.glob("*/*"):
            if not run_dir.is_dir():
                continue
            key = _run_key(run_dir.name)
            newest[key] = max(newest.get(key, 0.0), run_dir.stat().st_mtime)
            dirs.setdefault(key, []).append(run_dir)
    current = _run_key(current_run_name)
    others = sorted((k for k in newest if k != current), key=newest.get, reverse=True)
    removed = others[keep_runs - 1 :]
    for key in removed:
        for run_dir in dirs[key]:
            shutil.rmtree(run_dir, ignore_errors=True)
    return removed


def _site_config() -> dict:
    """The local Data Docs site, rendered by the offline views below."""
    view = {"module_name": "racemap.checks.data_docs", "class_name": "OfflinePageView"}
    return {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": "uncommitted/data_docs/local_site/",
        },
        "site_index_builder": {
            "class_name": "DefaultSiteIndexBuilder",
            "validation_results_limit": VALIDATION_RESULTS_SHOWN,
            "view": {
                "module_name": "racemap.checks.data_docs",
                "class_name": "OfflineIndexPageView",
            },
        },
        "site_section_builders": {
            "expectations": {"view": dict(view)},
            "validations": {"view": dict(view)},
            "profiling": "False",
        },
    }


def import_gx():
    """Import what a checkpoint needs (seconds of CPU: ``racemap run`` does it in its GX worker
    while the run loads, racemap/checks/gx_worker.py)."""
    # GX logs an SQL error it meets (a connection refused) with its traceback, then raises or
    # records it: through logging's last-resort handler that traceback reached the console
    # before racemap's one line, which names the cause.
    gx_log = logging.getLogger("great_expectations")
    gx_log.setLevel(logging.ERROR)
    gx_log.propagate = False
    if not gx_log.handlers:
        gx_log.addHandler(logging.NullHandler())
    with tools_environment():  # the analytics opt-out, whatever the shell says
        import great_expectations as gx
        import great_expectations.checkpoint  # noqa: F401
        import great_expectations.core.run_identifier  # noqa: F401

    return gx


# The stores of the file context that every checkpoint writes again (add_or_update), one JSON
# file per suite, validation definition or checkpoint.
REWRITTEN_STORES = ("expectations", "validation_definitions", "checkpoints")


def drop_torn_files(root: Path) -> list[Path]:
    """Remove what a command killed while Great Expectations wrote its file context left torn:
    GX writes each file in place (truncated, then written), so a SIGKILL in between left a file
    cut short, and every later checkpoint of this database stopped on it ("unexpected
    JSONDecodeError") until someone deleted it. When one file of the stores checkpoints write
    again is unreadable, those stores go whole (a definition names its suite by id): each
    checkpoint makes its own again; the validation history (``uncommitted/``) stays. An
    unreadable ``great_expectations.yml`` goes too (GX makes a new one, and the data source is
    added back). The files removed."""
    import json

    import yaml

    base = Path(root) / "gx"
    torn: list[Path] = []
    config = base / "great_expectations.yml"
    try:
        if config.is_file() and not isinstance(yaml.safe_load(config.read_text()), dict):
            torn.append(config)
    except (OSError, ValueError, yaml.YAMLError):
        torn.append(config)
    files = [f for store in REWRITTEN_STORES for f in sorted((base / store).glob("*.json"))]
    for path in files:
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            torn.extend(files)
            break
    for path in torn:
        path.unlink(missing_ok=True)
    return torn


def _context(root: Path):
    gx = import_gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    drop_torn_files(root)
    context = gx.get_context(mode="file", project_root_dir=str(root))
    changed = False
    # The context hands progress_bars back as a dict: compared with a ProgressBarsConfig it was
    # never equal, so every checkpoint saved great_expectations.yml and loaded the context twice.
    bars = context.variables.progress_bars
    globally = bars.get("globally") if isinstance(bars, dict) else getattr(bars, "globally", None)
    if globally is not False:
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        changed = True
    if context.variables.analytics_enabled is not False:
        context.variables.analytics_enabled = False
        changed = True
    # No config_variables.yml: the data source's URL comes from the environment, and GX parsed
    # that file (comments only) for every configuration value it read: some 250 YAML loads a
    # checkpoint.
    if context.variables.config_variables_file_path is not None:
        context.variables.config_variables_file_path = None
        changed = True
    sites = {"local_site": _site_config()}
    if context.variables.data_docs_sites != sites:
        context.variables.data_docs_sites = sites
        changed = True
    if changed:
        context.variables.save()
        context = gx.get_context(mode="file", project_root_dir=str(root))
    return gx, context


def _datasource(context):
    """The PostgreSQL data source of ${RACEMAP_GX_DATABASE_URL}, kept with its assets from one
    checkpoint to the next: replacing it every time dropped them, and GX wrote
    great_expectations.yml again for each asset and batch definition added back."""
    url = "${" + URL_VARIABLE + "}"
    try:
        datasource = context.data_sources.get(DATASOURCE)
    except (LookupError, ValueError):  # KeyError when it is not there yet
        datasource = None
    held = getattr(datasource, "connection_string", None)
    if datasource is None or getattr(held, "template_str", held) != url:
        datasource = context.data_sources.add_or_update_postgres(
            name=DATASOURCE, connection_string=url
        )
    return datasource


def _table_asset(datasource, name: str, schema: str, table: str):
    # The names always quoted as they are (they are the application's): GX leaves a bare table
    # name unquoted in its SQL (`GP's Table` was a syntax error), so it is given between double
    # quotes (GX keeps them in its file; a `"` inside is refused by settings.validate_vars),
    # and GX lowercases a bare schema name (`App` became `app`, which does not exist), so the
    # schema is an SQLAlchemy quoted name.
    from sqlalchemy.sql.elements import quoted_name

    try:
        asset = datasource.get_asset(name)
        # An asset read back from the context's file holds the table quoted (GX writes it
        # between quotes) and the schema as a plain string, lowercased when used: kept while
        # that changes nothing, made again for a schema with upper case.
        if not (
            asset.table_name == table
            and getattr(asset.table_name, "quote", False)
            and asset.schema_name == schema
            and (getattr(asset.schema_name, "quote", False) or schema == schema.lower())
        ):
            datasource.delete_asset(name)
            raise LookupError
    except LookupError:
        asset = datasource.add_table_asset(
            name=name, table_name=f'"{table}"', schema_name=quoted_name(schema, quote=True)
        )
    try:
        return asset.get_batch_definition("whole_table")
    except (KeyError, LookupError, ValueError):
        return asset.add_batch_definition_whole_table("whole_table")


def _suite(gx, context, name: str, expectations: list):
    suite = gx.ExpectationSuite(name=name, expectations=expectations)
    return context.suites.add_or_update(suite)


def loaded_seasons(db) -> list[int]:
    """Seasons with a successful OpenF1 fetch on record: each must have rows."""
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(
            "select exists (select 1 from information_schema.tables"
            " where table_schema = 'raw' and table_name = 'openf1_loads')"
        )
        if not cur.fetchone()[0]:
            return []
        # The rule of int_seasons_loaded (models/intermediate), read here before dbt builds
        # it: a season whose schedule (meetings or sessions) was fetched with records. A season
        # OpenF1 had nothing for (404 "No results found.", or past the snapshot's end) is not.
        # tests/test_validation.py checks that the two agree.
        cur.execute(
            "select distinct season from raw.openf1_loads where status = 'ok'"
            " and rows_received > 0 and endpoint in ('meetings', 'sessions') order by 1"
        )
        return [int(row[0]) for row in cur.fetchall()]


def _schedule_suite(E, endpoint: endpoints.Endpoint, seasons: list[int], more: list) -> tuple:
    """The raw table of a schedule endpoint of the registry (meetings, sessions): it has rows,
    its key (the endpoint's ``keys``) is present and unique, every loaded season has rows, then
    ``more``."""
    schema, table = endpoint.table.split(".")
    (key,) = endpoint.keys
    return (
        f"raw_openf1_{endpoint.name}",
        schema,
        table,
        [
            E.ExpectTableRowCountToBeBetween(min_value=1),
            E.ExpectColumnValuesToNotBeNull(column=key),
            E.ExpectColumnValuesToBeUnique(column=key),
            E.ExpectColumnDistinctValuesToContainSet(
                column="year",
                value_set=seasons,
                description=f"every loaded season has {endpoint.name}: {_seasons(seasons)}",
            ),
            *more,
        ],
    )


def _suites(gx, races: RacesTable, seasons: list[int], threshold: float) -> dict:
    """name -> (asset name, schema, table, expectations)."""
    E = gx.expectations
    # GX replaces {batch} with "(select ...) as subselect", so name it through a CTE.
    return {
        "raw_openf1_meetings": _schedule_suite(E, endpoints.get("meetings"), seasons, []),
        "raw_openf1_sessions": _schedule_suite(
            E,
            endpoints.get("sessions"),
            seasons,
            [
                E.ExpectColumnValuesToNotBeNull(column="meeting_key"),
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
                # Column map expectations skip nulls: unique among the races that hold a key.
                E.ExpectColumnValuesToBeUnique(column="openf1_meeting_key"),
                E.ExpectColumnValuesToBeUnique(column="openf1_session_key"),
                E.UnexpectedRowsExpectation(
                    description=(
                        "each race holds its own mapping: the (openf1_meeting_key, "
                        "openf1_session_key) a race holds is the one racemap.race_openf1_mapping "
                        "gives it (keys of a season whose OpenF1 data was never loaded are not "
                        "judged)"
                    ),
                    # GX leaves {batch} unaliased in a query with a join: alias it here.
                    unexpected_rows_query=(
                        "with r as (select * from {batch} as batch_rows)"
                        f" select cast(r.{quote_ident(races.id_column)} as text) as race_id,"
                        " r.openf1_meeting_key, r.openf1_session_key,"
                        " m.meeting_key, m.session_key from r"
                        " join racemap.race_openf1_mapping m"
                        f" on m.race_id = cast(r.{quote_ident(races.id_column)} as text)"
                        " where (r.openf1_meeting_key is not null"
                        " or r.openf1_session_key is not null)"
                        " and (m.status = 'mapped' or m.is_season_loaded)"
                        " and coalesce(m.reason, '') <> 'invalid_race'"
                        " and (r.openf1_meeting_key is distinct from m.meeting_key"
                        " or r.openf1_session_key is distinct from m.session_key)"
                    ),
                    meta=ATTENTION,
                ),
            ],
        ),
        "races_needing_attention": (
            "races_needing_attention",
            "racemap",
            "races_needing_attention",
            [
                E.UnexpectedRowsExpectation(
                    description=(
                        "no race needs a person: none unmapped in the past of a loaded season "
                        "(but for cancelled races and reviewed skips), none with an unusable "
                        "row, none holding keys that are not its mapping"
                    ),
                    unexpected_rows_query=(
                        "with a as (select * from {batch})"
                        " select a.race_id, a.kind, a.reason, a.detail, a.action from a"
                    ),
                    meta=ATTENTION,
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
                E.ExpectColumnValuesToBeInSet(column="reason", value_set=reason_words()),
                # The races whose results disagree, by id: none may exist. An empty set, not
                # "to be null": with no disagreeing race the condition selects no row, and
                # ExpectColumnValuesToBeNull's Data Docs then show "NaN% null" (this shows --).
                E.ExpectColumnValuesToBeInSet(
                    column="race_id",
                    value_set=[],
                    row_condition=gx.expectations.row_conditions.Column("results_check")
                    == "disagree",
                    description="no race's results disagree with OpenF1's (results_check)",
                    meta=ATTENTION,
                ),
            ],
        ),
        "mapping_coverage": (
            "mapping_coverage",
            "racemap",
            "mapping_coverage",
            [
                E.ExpectColumnValuesToNotBeNull(column="season"),
                # coverage is null for a season with no Grand Prix race session loaded.
                E.ExpectColumnValuesToBeBetween(
                    column="coverage",
                    min_value=threshold,
                    max_value=1,
                    description=(
                        f"in each season whose OpenF1 data was loaded, at least {threshold:.0%} "
                        "of the races OpenF1 should know (past, not called off, not skipped by "
                        "a reviewed override; circuits missing from the map included) are "
                        "mapped (var coverage_threshold)"
                    ),
                    meta=ATTENTION,
                ),
            ],
        ),
    }


def _seasons(seasons: list[int]) -> str:
    return ", ".join(map(str, seasons)) or "none loaded"


CHECKPOINTS = {
    "raw": ["raw_openf1_meetings", "raw_openf1_sessions"],
    "mapping": [
        "races_openf1_keys",
        "race_openf1_mapping",
        "mapping_coverage",
        "races_needing_attention",
    ],
}


def _raised(exception_info) -> str | None:
    """The message of the exception an expectation could not run for, else None. GX gives it
    at the top of ``exception_info``, or under each metric it could not compute (a connection
    refused while the query ran): read only at the top, such an expectation was "None
    unexpected rows", an attention, not a failure."""
    if not exception_info:
        return None
    for info in (exception_info, *exception_info.values()):
        if isinstance(info, dict) and info.get("raised_exception"):
            return str(info.get("exception_message") or "an error")
    return None


# SQLAlchemy's wrapping of a driver's error: "(psycopg2.OperationalError) <message>
# (Background on this error at: https://sqlalche.me/...)".
_SQLALCHEMY_WRAPPING = re.compile(r"^\([\w.]+\)\s*|\s*\(Background on this error at: [^)]*\)$")


def _could_not_run(raised: str) -> str:
    """The error an expectation could not run for, on one line, without SQLAlchemy's wrapping
    of the driver's error or libpq's prefix of a refused connection."""
    return server_message(_SQLALCHEMY_WRAPPING.sub("", " ".join(raised.split())))[:200]


def _grouped(could_not_run: dict[str, list[str]]) -> list[str]:
    """One phrase per error that expectations could not run for: a query or a connection
    refused mid-checkpoint fails every expectation after it alike, and naming each of them with
    the error again made one line of thousands of characters."""
    lines = []
    for error, names in could_not_run.items():
        if len(names) == 1:
            lines.append(f"{names[0]} [error: {error}]")
            continue
        suites = list(dict.fromkeys(name.split(":", 1)[0] for name in names))
        lines.append(
            f"{len(names)} expectations could not run ({', '.join(suites)}) [error: {error}]"
        )
    return lines


def _describe(result) -> tuple[list[str], list[str]]:
    """One short phrase per failed expectation (suite, expectation, column, what was found),
    split into (failures, attention); the expectations that could not run for one error, one
    phrase (:func:`_grouped`)."""
    failed, attention = [], []
    could_not_run: dict[str, list[str]] = {}
    for run in result.run_results.values():
        suite = run.suite_name
        for er in run.results:
            if er.success:
                continue
            cfg = er.expectation_config
            column = cfg.kwargs.get("column")
            what = cfg.type + (f"({column})" if column else "")
            if cfg.description and (
                cfg.type == "unexpected_rows_expectation" or cfg.kwargs.get("row_condition")
            ):
                what += f" '{cfg.description}'"
            info = er.result or {}
            if "partial_missing_list" in info:
                found = f"missing {info['partial_missing_list']}"
            elif cfg.type == "unexpected_rows_expectation":
                found = f"{info.get('observed_value')} unexpected rows"
            elif info.get("unexpected_count") is not None:
                found = f"{info['unexpected_count']} unexpected"
                sample = info.get("partial_unexpected_list") or []
                if sample and not isinstance(sample[0], dict):
                    found += ": " + ", ".join(map(str, sample[:3]))
            elif "observed_value" in info:
                found = f"observed {info['observed_value']}"
            else:
                found = None
            raised = _raised(er.exception_info)
            if raised is not None:  # a failure, whatever it checks
                could_not_run.setdefault(_could_not_run(raised), []).append(f"{suite}: {what}")
                continue
            line = f"{suite}: {what}" + (f" [{found}]" if found else "")
            meta = getattr(cfg, "meta", None) or {}
            (attention if meta.get("verdict") == "attention" else failed).append(line)
    return failed + _grouped(could_not_run), attention


def run_checkpoint(
    db,
    name: str,
    races: RacesTable,
    reports_dir: Path,
    run_name: str,
    threshold: float = DEFAULT_COVERAGE_THRESHOLD,
    seasons: list[int] | None = None,
    gx_root: Path = PROJECT_DIR,
    keep_runs: int = DATA_DOCS_RUNS,
) -> ValidationOutcome:
    """Run checkpoint ``raw`` or ``mapping``; Data Docs are rebuilt into reports/validation.

    ``seasons``: those that must have raw rows (default: every season loaded successfully);
    ``threshold``: the least coverage per season (the ``coverage_threshold`` var);
    ``gx_root``: where the file context lives (a run: its database's state directory; else the
    project's ``gx/``); ``keep_runs``: how many runs' validations the Data Docs keep
    (RACEMAP_DATA_DOCS_RUNS).
    """
    # The data source reads ${RACEMAP_GX_DATABASE_URL} (and libpq its variables) from the
    # environment: written for the checkpoint only, in one place.
    with tools_environment(db):
        try:
            return _run_checkpoint(
                db, name, races, reports_dir, run_name, threshold, seasons, gx_root, keep_runs
            )
        except Exception as exc:
            refused = _refused_connection(exc)
            if refused is None:
                raise
            # GX's own words ("Attempt to connect to table: ... failed because the test query
            # failed. Ensure the table exists ...: (psycopg2.OperationalError) ...") blamed the
            # table: the connection's one line instead, as every command says it.
            raise RacemapError(connection_error(db, refused)) from None


def _refused_connection(exc: BaseException) -> BaseException | None:
    """The driver's error of a connection the server refused (too many connections, a role
    that may not log in, ...), wherever GX or SQLAlchemy wrapped it; None for any other."""
    import psycopg2

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        orig = getattr(exc, "orig", None)
        for candidate in (exc, orig):
            if isinstance(candidate, psycopg2.OperationalError) and "connection to server" in str(
                candidate
            ):
                return candidate
        exc = exc.__cause__ or exc.__context__
    return None


def _run_checkpoint(
    db, name, races, reports_dir, run_name, threshold, seasons, gx_root, keep_runs
) -> ValidationOutcome:
    gx, context = _context(gx_root)
    if seasons is None:
        seasons = loaded_seasons(db) if name == "raw" else []
    suites = _suites(gx, races, sorted(seasons), threshold)
    chosen = {suite_name: suites[suite_name] for suite_name in CHECKPOINTS[name]}
    return run_suites(gx, context, name, chosen, reports_dir, run_name, gx_root, keep_runs)


def run_suites(
    gx, context, name: str, suites: dict, reports_dir, run_name: str, gx_root: Path, keep_runs
) -> ValidationOutcome:
    """Checkpoint ``name`` of ``suites`` ({suite: (asset, schema, table, expectations)}) on the
    database of ${RACEMAP_GX_DATABASE_URL}, run as ``run_name``; the validations of the newest
    ``keep_runs`` runs kept, the Data Docs published into ``<reports_dir>/validation``. Every
    checkpoint (raw, mapping, race_data) is built here."""
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
    )

    datasource = _datasource(context)
    definitions = []
    for suite_name, (asset_name, schema, table, expectations) in suites.items():
        batch = _table_asset(datasource, asset_name, schema, table)
        suite = _suite(gx, context, suite_name, expectations)
        definitions.append(
            context.validation_definitions.add_or_update(
                gx.ValidationDefinition(name=suite_name, data=batch, suite=suite)
            )
        )
    # No UpdateDataDocsAction: it rebuilt the site's index once for every validation result.
    # The pages of this run's results and suites, and the index, are built once below.
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=name,
            validation_definitions=definitions,
            actions=[],
            result_format={"result_format": "SUMMARY"},
        )
    )
    prune_validations(run_name, gx_root, keep_runs)  # a bounded history
    result = checkpoint.run(run_id=RunIdentifier(run_name=run_name))
    context.build_data_docs(
        resource_identifiers=[
            identifier
            for key, validation in result.run_results.items()
            for identifier in (key, ExpectationSuiteIdentifier(name=validation.suite_name))
        ]
    )
    publish_docs(context, gx_root, reports_dir, rebuild=False)
    evaluated = sum(len(r.results) for r in result.run_results.values())
    failed, attention = _describe(result)
    return ValidationOutcome(name, not failed, evaluated, failed, run_name, attention)


def publish_docs(context, root: Path, reports_dir: Path, rebuild: bool = True) -> Path:
    """Copy the context's local Data Docs site to ``<reports>/validation``.

    The checkpoint has rendered its own pages and the index; ``rebuild`` renders every page
    again (after a change of the views).
    """
    if rebuild:
        context.build_data_docs()
    site = root / "gx" / "uncommitted" / "data_docs" / "local_site"
    target = Path(reports_dir) / "validation"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(site, target)
    return target
