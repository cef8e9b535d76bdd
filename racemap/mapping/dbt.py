"""dbt, run in this process (dbtRunner): no second interpreter start-up per command."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from racemap.errors import RacemapError
from racemap.settings import load_environment, temporary_environ


@dataclass
class DbtOutcome:
    command: str
    success: bool
    failures: list[str]
    results: list
    result: object = None  # dbt's own result (for ``parse``: the manifest)


def _vars_arg(variables: dict | None) -> list[str]:
    return ["--vars", json.dumps(variables)] if variables else []


def project_dir() -> str:
    """The dbt project: this repository, or $RACEMAP_DBT_PROJECT_DIR (a copy with other seeds)."""
    return str(load_environment().racemap_dbt_project_dir)


def invoke(args: list[str], variables: dict | None = None, manifest=None) -> DbtOutcome:
    """Run one dbt command against the project; the caller has exported the PG* variables.

    Nothing of dbt's reaches the console, its errors included: racemap says a failure in one
    line (:func:`require`), and ``logs/dbt.log`` and ``target/run_results.json`` hold the rest.
    (``--quiet`` kept dbt's error events: on Ctrl-C, "Encountered an error" and a traceback.)

    ``manifest``: the project as ``parse`` returned it (with the same vars), so this command
    does not parse again (dbtRunner's ``manifest``)."""
    from dbt.cli.main import dbtRunner
    from dbt_common.events.event_manager_client import cleanup_event_logger

    full = [
        *args,
        "--log-level",
        "none",
        "--no-use-colors",
        "--project-dir",
        project_dir(),
        "--profiles-dir",
        project_dir(),
        "--log-level-file",
        load_environment().dbt_log_level_file,
        *_vars_arg(variables),
    ]
    # dbt's loggers until it has read these flags: at import, one on the console (info,
    # colours); Ctrl-C before the flags were read printed dbt's traceback through it.
    cleanup_event_logger()
    # A run-operation's macro error reaches only dbt's log (an event), its result no message.
    operation_errors: list[str] = []

    def operation_error(event) -> None:
        if event.info.name in ("RunningOperationCaughtError", "RunningOperationUncaughtError"):
            operation_errors.append(str(event.data.exc))

    # racemap's own dbt: its on-run-start guard (macros/racemap_lock_guard.sql) stops a plain
    # dbt build while a racemap holds the run lock, and this one runs under that lock.
    with temporary_environ(RACEMAP_DBT_INVOCATION="1"):
        result = dbtRunner(manifest=manifest, callbacks=[operation_error]).invoke(full)
    if isinstance(result.exception, KeyboardInterrupt):
        raise result.exception  # Ctrl-C while dbt ran: the run stops, not "dbt failed"
    failures = []
    results = list(getattr(result.result, "results", None) or [])
    for item in results:
        status = str(getattr(item, "status", "")).lower()
        if status in {"error", "fail", "runtime error"}:
            node = getattr(item, "node", None)
            name = getattr(node, "name", None) or getattr(item, "unique_id", "?")
            message = getattr(item, "message", "") or "\n".join(operation_errors)
            failures.append(f"{name}: {_cause(message) or status}")
    if not result.success and not failures:
        # dbt's first line is a heading ("Database Error"): the cause is on the next ones.
        lines = [line.strip() for line in str(result.exception or "").splitlines()]
        failures.append(" ".join(filter(None, lines))[:500] or f"dbt {args[0]} failed")
    return DbtOutcome(args[0], bool(result.success), failures, results, result.result)


def _cause(message: str) -> str:
    """A node's message in one line: an error's first line is a heading ("Database Error in
    test x (path)", or "Database Error"), its cause the next one ('relation "raw.y" does not
    exist')."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if len(lines) > 1 and (" Error in " in lines[0] or lines[0].endswith(" Error")):
        del lines[0]  # also a run-operation's bare "Database Error"
    return lines[0] if lines else ""


def require(outcome: DbtOutcome) -> DbtOutcome:
    """The outcome, or the failure as one line: the first five failed nodes with their causes,
    and where dbt's log holds the rest."""
    if not outcome.success:
        shown = "; ".join(outcome.failures[:5])
        more = f" (+{len(outcome.failures) - 5} more)" if len(outcome.failures) > 5 else ""
        log = log_path() / "dbt.log"
        raise RacemapError(f"dbt {outcome.command} failed: {shown}{more} (in full: {log})")
    return outcome


def migrate(variables: dict | None = None) -> None:
    """The one-time migration of the races table (``macros/migrate_races.sql``); no
    ``manifest.json`` (the docs write theirs)."""
    require(invoke(["run-operation", "--no-write-json", "migrate_races"], variables))


def parse(variables: dict | None = None):
    """The project parsed (partial parsing: warm in the database's own target path), for
    ``build`` and ``docs``. A run parses while it waits on the raw checks, so the build starts
    at once; importing dbt is most of the time here, and it is paid once per process.

    ``--no-write-json``: no ``manifest.json`` (writing it was half of a warm parse); the docs
    write theirs."""
    outcome = require(invoke(["parse", "--no-write-json"], variables))
    return outcome.result


# The race data models (models/*/race_data, dbt_project.yml): built by ``racemap sync``.
RACE_DATA_TAG = "tag:race_data"


def build(variables: dict | None = None, manifest=None) -> DbtOutcome:
    """``dbt build`` without the unit tests: those check the rules with the project's own vars
    (``make test`` and CI run them); a run's vars are the user's. The race data models are
    left to ``racemap sync`` (:func:`build_race_data`)."""
    args = ["build", "--no-write-json", "--exclude-resource-type", "unit_test"]
    args += ["--exclude", RACE_DATA_TAG]
    return require(_with_run_results(invoke(args, variables, manifest=manifest)))


def _with_run_results(outcome: DbtOutcome) -> DbtOutcome:
    """``run_results.json`` written in the target path, as dbt writes it, without the
    ``manifest.json`` dbt writes beside it (``--write-json``): serialising the whole manifest
    again was a tenth of a warm build, and the project's manifest is the docs' (written when
    the project, the vars or the catalog change)."""
    if hasattr(outcome.result, "write"):
        outcome.result.write(str(target_path() / "run_results.json"))
    return outcome


# What a sync builds: the race data, the driver link from the application's results as they
# are now (the checks compare final positions with them), and the view of OpenF1's session
# results race_classification reads (a sync after an upgrade, before any run, reads it as this
# release types it).
RACE_DATA_SELECT = (
    RACE_DATA_TAG,
    "stg_app__results",
    "race_driver_links",
    "stg_openf1__session_results",
)


def build_race_data(variables: dict | None = None) -> DbtOutcome:
    """``dbt build --select tag:race_data stg_app__results race_driver_links
    stg_openf1__session_results``: the race data marts and race_data_checks with their tests
    (after a sync; empty, and passing, before any), the driver link read from the
    application's results again, and the session results' view. Its ``run_results.json``,
    without a ``manifest.json``, as :func:`build`."""
    args = ["build", "--no-write-json", "--select", *RACE_DATA_SELECT]
    args += ["--exclude-resource-type", "unit_test"]
    return require(_with_run_results(invoke(args, variables)))


DOCS_FILES = {
    "index.html": "static_index.html",
    "manifest.json": "manifest.json",
    "catalog.json": "catalog.json",
}


def docs(
    reports_dir: Path | str, variables: dict | None = None, conn=None, manifest=None
) -> tuple[Path, bool]:
    """The dbt docs site in ``<reports_dir>/dbt-docs``: (its index.html, whether it was generated).

    The site is the static one (``--static``): manifest and catalog are embedded in index.html,
    so it opens from the file system without a web server. manifest.json and catalog.json are
    copied beside it for tools; compiled SQL and run artefacts never land in the reports. Run
    after ``dbt build``, in dbt's target path (``$DBT_TARGET_PATH``, the database's own: its
    partial parse is warm).

    Generating the docs takes a parse and a compile of every node and the catalog query. They
    change only when the project, the vars or the catalog change, so the site is kept beside the
    target (``dbt-docs/``) with a key of those three (``docs_key``) and regenerated only when the
    key differs: ``conn`` (an open connection to the database) reads the catalog's signature of
    the schemas in ``manifest`` (the project as ``parse`` returned it; parsed here when not
    given). Without ``conn`` the site is always generated.
    """
    out = Path(reports_dir) / "dbt-docs"
    target = target_path()
    kept = target.parent / "dbt-docs"
    if conn is not None and manifest is None:
        manifest = parse(variables)  # the key reads the project's schemas from it
    key = docs_key(variables, conn, manifest) if conn is not None else None
    generated = key is None or _read(kept / "key") != key
    if generated:
        shutil.rmtree(kept, ignore_errors=True)
        require(
            invoke(
                ["docs", "generate", "--static", "--target-path", str(target)],
                variables,
                manifest=manifest,
            )
        )
        kept.mkdir(parents=True, exist_ok=True)
        for name, source in DOCS_FILES.items():
            shutil.copyfile(target / source, kept / name)
        if key is not None:
            (kept / "key").write_text(key)
    out.mkdir(parents=True, exist_ok=True)
    for name in DOCS_FILES:
        shutil.copyfile(kept / name, out / name)
    index = out / "index.html"
    index.write_text(file_safe_index(index.read_text(encoding="utf-8")), encoding="utf-8")
    return index, generated


# dbt's static index.html asks the browser for files that do not exist: a favicon linked by a
# bundler expression the build left in (``${require('./assets/favicons/favicon.ico')}``), and,
# for every node of the menu, the SVG icons of ``<use xlink:href="{{ getIcon(...) }}">``, an
# Angular expression the browser fetches as it stands before Angular fills it in (two failed
# requests and two console errors a node). Angular's ``ng-attr-`` sets the attribute once it is
# evaluated: the icons still show.
_BUNDLER_FAVICON = re.compile(r"""<link rel="shortcut icon" href="\$\{require\([^"]*\)\}"/>""")
_ICON_HREF = re.compile(r"""(?<![\w:-])((?:xlink:)?href)="\{\{ getIcon\(""")


def file_safe_index(html: str) -> str:
    """dbt's static docs page without its requests for files that are not there (idempotent)."""
    return _ICON_HREF.sub(r'ng-attr-\1="{{ getIcon(', _BUNDLER_FAVICON.sub("", html))


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def docs_key(variables: dict | None, conn, manifest) -> str:
    """What the docs site depends on, hashed: the project's files (dbt_project.yml and every file
    under its model, macro, seed, snapshot, test, analysis and docs paths), the vars, dbt's
    version and the catalog of the project's schemas (relations, columns, types, comments,
    owners: what ``dbt docs generate`` reads). The manifest is no key: dbt writes it again with
    other compile fields after a parse, a build or a docs generate."""
    import yaml
    from dbt.version import __version__ as dbt_version

    root = Path(project_dir())
    config = yaml.safe_load((root / "dbt_project.yml").read_text()) or {}
    folders = set()
    for setting, default in PATH_SETTINGS.items():
        folders.update(config.get(setting) or default)
    digest = hashlib.sha256()
    files = [root / "dbt_project.yml"]
    for folder in sorted(folders):
        files.extend(sorted(p for p in (root / folder).rglob("*") if p.is_file()))
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    with conn.cursor() as cur:
        cur.execute(CATALOG_SIGNATURE, (_project_schemas(manifest),))
        (catalog,) = cur.fetchone()
    for part in (json.dumps(variables or {}, sort_keys=True), dbt_version, catalog or ""):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()


def parsed_before() -> bool:
    """dbt has parsed the project in this target path before (its partial parse is warm)."""
    return (target_path() / "partial_parse.msgpack").is_file()


def cold_start_note() -> str:
    """What a person waits for while dbt starts in a cold target path, or nothing."""
    if parsed_before():
        return ""
    return " (dbt parses the project first: a while on a first run, later runs reuse it)"


def target_path() -> Path:
    """dbt's target path: $DBT_TARGET_PATH (a run's: the database's own), else the project's."""
    return Path(os.environ.get("DBT_TARGET_PATH") or Path(project_dir()) / "target")


def log_path() -> Path:
    """dbt's log path: $DBT_LOG_PATH (a run's: the database's own), else the project's."""
    return Path(os.environ.get("DBT_LOG_PATH") or Path(project_dir()) / "logs")


def _project_schemas(manifest) -> list[str]:
    """The schemas of the project's nodes and sources in ``manifest`` (as ``parse`` returned it)."""
    nodes = [*manifest.nodes.values(), *manifest.sources.values()]
    return sorted({node.schema for node in nodes if node.schema})


# dbt_project.yml's path settings and dbt's defaults for them.
PATH_SETTINGS = {
    "model-paths": ["models"],
    "macro-paths": ["macros"],
    "seed-paths": ["seeds"],
    "snapshot-paths": ["snapshots"],
    "test-paths": ["tests"],
    "analysis-paths": ["analyses"],
    "docs-paths": [],
}

# The columns dbt-postgres's catalog query reads (postgres__get_catalog_relations), hashed.
CATALOG_SIGNATURE = """
select md5(string_agg(
    concat_ws('|', sch.nspname, tbl.relname, tbl.relkind, pg_get_userbyid(tbl.relowner),
              tbl_desc.description, col.attnum, col.attname,
              format_type(col.atttypid, col.atttypmod), col_desc.description),
    E'\\n' order by sch.nspname, tbl.relname, col.attnum))
from pg_catalog.pg_namespace sch
join pg_catalog.pg_class tbl on tbl.relnamespace = sch.oid
join pg_catalog.pg_attribute col on col.attrelid = tbl.oid
left join pg_catalog.pg_description tbl_desc
    on tbl_desc.objoid = tbl.oid and tbl_desc.objsubid = 0
left join pg_catalog.pg_description col_desc
    on col_desc.objoid = tbl.oid and col_desc.objsubid = col.attnum
where lower(sch.nspname) = any(select lower(s) from unnest(%s::text[]) as s)
    and tbl.relpersistence in ('p', 'u')
    and tbl.relkind in ('r', 'v', 'f', 'p', 'm')
    and col.attnum > 0
    and not col.attisdropped
"""
