"""``racemap run``: load, validate raw, dbt build, apply, validate, report, and its verdict.

Every run ends with a verdict: ``ok`` (exit 0), ``attention`` (exit 3: at least one race needs
a person, each named with what to do) or ``failed`` (exit 1: one line saying what went wrong).
A run holds the database's run lock throughout, keeps its local state (dbt target and logs, the
Great Expectations context) in a directory of that database's own, and writes its reports into a
fresh directory that replaces the previous report set when it ends, whatever its verdict.
"""

from __future__ import annotations

import functools
import signal
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from racemap import migrations, runtime
from racemap import verdict as verdicts
from racemap.checks.gx_worker import GxWorker, InProcess
from racemap.db import (
    Database,
    check_columns,
    parse_database_url,
    quote_ident,
    relation_exists,
    relation_kind,
    resolve_database,
)
from racemap.demo import create_demo_tables
from racemap.errors import (
    Interrupted,
    RacemapError,
    UsageError,
    check_interrupted,
    known_database_error,
)
from racemap.mapping import apply as apply_mod
from racemap.mapping import dbt
from racemap.mapping.results import prepare_results
from racemap.openf1.client import OpenF1Client
from racemap.openf1.loader import ensure_raw_tables, load_openf1
from racemap.reporting import changes as changes_mod
from racemap.reporting import notify, plural, reports, run_summary, status
from racemap.reporting.notebooks import NotebookRunner, export_html, html_exporter
from racemap.settings import (
    Environment,
    RacesTable,
    coverage_threshold,
    known_vars,
    load_environment,
    parse_seasons,
    validate_vars,
)


@dataclass
class RunOptions:
    database_url: str | None = None
    seasons: str | None = None
    offline: bool = False
    openf1_url: str | None = None
    refresh: bool = False
    dry_run: bool = False
    allow_changes: bool = False
    reports_dir: Path | None = None  # None: reports/<database name>/
    variables: dict = field(default_factory=dict)
    pgdata: Path | None = None
    lock_timeout: float = runtime.DEFAULT_LOCK_TIMEOUT
    notify_url: str | None = None  # else $RACEMAP_NOTIFY_URL (racemap/reporting/notify.py)
    log: callable = print
    # The environment's settings, loaded and validated at the edge (the CLI); None: read here.
    environment: Environment | None = None
    # Concurrency devices replaced by the plain call (DEVICES; racemap bench --parts devices).
    plain: frozenset[str] = frozenset()


# What a run does beside its main line, each replaceable by the plain call to measure it:
# the GX worker process (GX imported during the load) and the mapping report in the kernel of
# the load's record notebook. Measured alone (racemap bench --parts devices), each saves a
# second or more of the warm run; a dbt docs thread, a report kernel started ahead and the
# record notebook in a thread saved less and are gone.
DEVICES = ("gx_worker", "shared_kernel")


@dataclass
class RunResult:
    run_id: str
    summary: dict
    exit_code: int
    failures: list[str]
    verdict: str = verdicts.OK
    attention: list[dict] = field(default_factory=list)
    reports_dir: Path | None = None


class Stages:
    """Wall time of each stage, for the summary and the benchmark; the stage a run stopped at."""

    def __init__(self, log):
        self.seconds: dict[str, float] = {}
        self.current: str | None = None
        self.log = log
        # Called with each stage's name as it begins, once set: the command's unfinished row
        # (changes.record_stage), so a run killed outright is a failed run at that stage.
        self.entered: Callable[[str], None] | None = None

    @contextmanager
    def stage(self, name: str):
        # A Ctrl-C or SIGTERM that Python dropped (raised inside a finalizer) stops the run at
        # the next boundary: before the next stage, or at the end of the stage it came in.
        check_interrupted()
        start = time.perf_counter()
        self.current = name
        self.log(f"-> {name}")
        if self.entered is not None:
            self.entered(name)
        try:
            yield
            check_interrupted()
        finally:
            self.seconds[name] = round(time.perf_counter() - start, 3)
        self.current = None


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


# The races table's column vars; the name and time may be empty (none).
RACE_COLUMN_VARS = (
    "race_id_column",
    "race_circuit_column",
    "race_date_column",
    "race_name_column",
    "race_time_column",
)


def check_race_columns(conn, races: RacesTable, variables: dict) -> None:
    """Every column the race_* vars name exists: a clear error before dbt's SQL one."""
    wanted = {**known_vars(), **variables}
    columns = {var: wanted.get(var) for var in RACE_COLUMN_VARS}
    check_columns(
        conn, races.schema, races.table, columns, ("race_name_column", "race_time_column")
    )


def prepare_races(db: Database, races: RacesTable, variables: dict, dry_run: bool, log=print):
    """The races table is there with its key columns, and this role may run: else one line.

    Demo races are created on the embedded database. A table without the key columns is
    migrated only where that is allowed (:func:`migrate_races`); a run never ALTERs the table
    once the columns exist.
    """
    with db.transaction() as conn:
        if not relation_exists(conn, races.schema, races.table):
            if db.embedded and (races.schema, races.table) == ("public", "races"):
                count = create_demo_tables(conn)
                log(
                    f"created the demo tables public.races ({count} races), public.circuits, "
                    "public.results and public.drivers"
                )
            else:
                raise RacemapError(
                    f"table {races.name} does not exist in {db.display}: racemap maps an "
                    "existing races table (name it with --var races_schema=... "
                    "--var races_table=...)"
                )
        grant = runtime.schema_usage_missing(conn, races)
        if grant:
            raise RacemapError("this role cannot run racemap: " + grant)
        check_race_columns(conn, races, variables)
    migrate_races(db, races, variables, dry_run, log)
    with db.transaction() as conn:
        grants = runtime.missing_grants(conn, races, dry_run)
    if grants:
        raise RacemapError("this role cannot run racemap: " + "; ".join(grants))


def migrate_races(
    db: Database, races: RacesTable, variables: dict, dry_run: bool = False, log=print
) -> list[str]:
    """The one-time schema change of the races table (two unique, indexed key columns), run by
    a run's prepare step and by ``racemap migrate`` alike: the columns added, [] when they were
    there. Only where it is allowed (the embedded demo, or a role that owns the table), never by
    a dry run: else one line saying who must run ``racemap migrate``."""
    with db.transaction() as conn:
        kind = relation_kind(conn, races.schema, races.table)
        if kind is None:
            raise RacemapError(f"table {races.name} does not exist in {db.display}")
        missing = runtime.key_columns_missing(conn, races)
        may_migrate = runtime.may_migrate(conn, races)
    if not missing:
        return []
    lacks = f"{races.name} lacks {', '.join(missing)} (with a unique constraint)"
    if kind not in ("table", "partitioned table"):
        raise RacemapError(
            f"{lacks}, and it is a {kind}: the keys need a table that can hold them, unique; "
            "name the application's table with --var races_schema=... --var races_table=..."
        )
    if kind == "partitioned table":
        with db.transaction() as conn, conn.cursor() as cur:
            cur.execute(
                "select pg_get_partkeydef(%s::regclass)",
                (f"{quote_ident(races.schema)}.{quote_ident(races.table)}",),
            )
            partition_key = cur.fetchone()[0]
        raise RacemapError(
            f"{lacks}, and it is a table partitioned by {partition_key}: PostgreSQL makes a "
            "column unique across partitions only together with the partition key, so each key "
            "cannot be unique on its own; keep the races in a table that is not partitioned "
            "and name it with --var races_schema=... --var races_table=..."
        )
    if dry_run:
        raise RacemapError(
            f"{lacks}: a dry run changes nothing, so run `racemap migrate` as the table's owner "
            "first"
        )
    if not (db.embedded or may_migrate):
        raise RacemapError(
            f"{lacks}: run `racemap migrate` once as the table's owner (e.g. --database-url "
            "with the owner's credentials)"
        )
    log(f"adding {', '.join(missing)} to {races.name}{dbt.cold_start_note()}")
    dbt.migrate(variables)
    log(f"migrated {races.name}: {', '.join(missing)} added (unique, indexed)")
    return missing


@dataclass
class ValidateResult:
    """``racemap validate``: each checkpoint's outcome, the races needing a person, the verdict."""

    outcomes: list
    races_needing: list[dict]

    @property
    def failed(self) -> list[str]:
        return [f for o in self.outcomes for f in o.failed]

    @property
    def attention(self) -> list[str]:
        return [a for o in self.outcomes for a in o.attention]

    @property
    def verdict(self) -> str:
        return verdicts.decide(self.failed, [*self.races_needing, *self.attention])


def validate(
    db: Database,
    races: RacesTable,
    threshold: float,
    reports_dir: Path,
    env: Environment,
    lock_timeout: float = runtime.DEFAULT_LOCK_TIMEOUT,
) -> ValidateResult:
    """The Great Expectations checkpoints alone, under the run lock and in the database's own
    state, with the run's verdict rule: the published report set of ``reports_dir`` again with
    new Data Docs, published whole."""
    from racemap.checks.validate import run_checkpoint

    stamp = new_run_id()
    outcomes = []
    with (
        runtime.run_lock(db, stamp, lock_timeout, command="validate"),
        runtime.database_state(db, env.racemap_state_dir) as state,
    ):
        # Its own database's report set: the published one with new Data Docs, whole.
        report_set = reports.ReportSet(reports_dir, stamp, db)
        reports.carry_over(reports_dir, report_set.dir, skip=("validation",))
        for name in ("raw", "mapping"):
            outcomes.append(
                run_checkpoint(
                    db,
                    name,
                    races,
                    report_set.dir,
                    f"validate-{stamp}-{name}",
                    threshold=threshold,
                    gx_root=state / "gx-root",
                    keep_runs=env.racemap_data_docs_runs,
                )
            )
        with db.transaction() as conn:
            races_needing = reports.attention_rows(conn)
        report_set.publish()
    return ValidateResult(outcomes, races_needing)


@dataclass
class RunContext:
    """Everything one run's stages read, built once by :func:`run` from its options and the
    environment before anything runs (bad input fails there): each stage's one argument."""

    run_id: str
    database_url: str | None  # --database-url, else DATABASE_URL; None: the embedded database
    options: RunOptions  # what was asked: offline, refresh, dry run, allow changes, the log
    env: Environment  # every environment variable, read and validated once
    seasons: list[int]
    variables: dict  # the dbt vars
    races: RacesTable
    threshold: float  # the coverage_threshold var
    reports_dir: Path  # --reports-dir, else reports/<database name>/
    notify_url: str | None
    lock_timeout: float
    stages: Stages
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    db: Database | None = None  # once the database is up
    state: Path | None = None  # the database's local state directory, once the lock is held
    locked: bool = False  # the run lock held: this run may record its verdict
    awaiting_lock: bool = False  # waiting for another racemap to give the lock up
    report_set: reports.ReportSet | None = None  # this run's set, once the lock is held
    validator: GxWorker | InProcess | None = None
    validations: list = field(default_factory=list)

    @classmethod
    def build(cls, options: RunOptions) -> RunContext:
        env = options.environment or load_environment()
        url = options.database_url or env.database_url
        if url:
            parse_database_url(url)
        seasons = parse_seasons(options.seasons)
        variables = validate_vars(options.variables)
        unknown = sorted(set(options.plain) - set(DEVICES))
        if unknown:
            raise UsageError(f"--plain {','.join(unknown)}: choose among {','.join(DEVICES)}")
        run_id = new_run_id()
        return cls(
            run_id=run_id,
            database_url=url,
            options=options,
            env=env,
            seasons=seasons,
            variables=variables,
            races=RacesTable.from_vars(variables),
            threshold=coverage_threshold(variables),
            reports_dir=Path(options.reports_dir or reports.database_reports_dir(url)),
            notify_url=options.notify_url or env.racemap_notify_url,
            lock_timeout=options.lock_timeout,
            stages=Stages(options.log),
        )

    @property
    def out(self) -> Path:
        """Where this run writes its reports until they are published."""
        return self.report_set.dir

    @property
    def log(self):
        return self.options.log

    def openf1_client(self) -> OpenF1Client | None:
        """The OpenF1 source: None offline (the bundled snapshot), else a client of
        ``--openf1-url`` or OPENF1_URL."""
        if self.options.offline:
            return None
        return OpenF1Client(base_url=self.options.openf1_url, environment=self.env)

    def secrets(self) -> list[str]:
        """What no report or message may show: the database's password, OpenF1's account and
        password."""
        return self.env.secrets(self.db)

    def uses(self, device: str) -> bool:
        """Whether the run uses concurrency ``device`` (DEVICES), not the plain call."""
        return device not in self.options.plain

    def checkpoint(self, name: str):
        """Start checkpoint ``name`` in the GX worker, in this database's context."""
        return self.validator.submit(
            self.db,
            name,
            self.races,
            self.out,
            f"{self.run_id}-{name}",
            threshold=self.threshold,
            gx_root=self.state / "gx-root",
            keep_runs=self.env.racemap_data_docs_runs,
        )


def run(options: RunOptions) -> RunResult:
    """One run; RacemapError (after its failure is recorded and reported) when it fails."""
    ctx = RunContext.build(options)  # bad input fails here, before anything runs or is written
    with ExitStack() as held:
        try:
            # Great Expectations imports in its own process while the run migrates and loads
            # (or has, for an earlier run of this process).
            ctx.validator = GxWorker.shared() if ctx.uses("gx_worker") else InProcess()
            held.callback(ctx.validator.release)
            with ctx.stages.stage("start_database"):
                ctx.db = resolve_database(ctx.database_url, options.pgdata)
                ctx.log(f"database: {ctx.db.display}")
                # One run per database; its local state its own (held until the run ends), and
                # the tools' environment (dbt, the kernels) that of this database.
                ctx.awaiting_lock = True
                held.enter_context(runtime.run_lock(ctx.db, ctx.run_id, ctx.lock_timeout, ctx.log))
                ctx.awaiting_lock = False
                ctx.locked = True
                ctx.state = held.enter_context(
                    runtime.database_state(ctx.db, ctx.env.racemap_state_dir)
                )
                ctx.report_set = reports.ReportSet(ctx.reports_dir, ctx.run_id, ctx.db)
                # The race pages are racemap sync's: kept until a sync renders them again.
                reports.carry_over(ctx.reports_dir, ctx.out, only=reports.SYNC_REPORTS)
            result = _run_locked(ctx)
            # The verdict stands only once everything the run promised is in place.
            with ctx.stages.stage("publish"):
                ctx.report_set.publish()
            changes_mod.record_run(ctx.db, ctx.run_id, result.summary, ctx.started_at, ctx.log)
        except BaseException as exc:
            failure = _record_failure(ctx, exc)
            if failure is exc:
                raise
            raise failure from None
    result.reports_dir = ctx.reports_dir
    _notify(ctx, result.summary)
    return result


def failure_message(exc: BaseException, stage: str | None) -> str:
    """One line for a run that stopped on ``exc``."""
    if isinstance(exc, KeyboardInterrupt):
        return f"interrupted during {stage or 'the run'}"
    if isinstance(exc, RacemapError):
        return " ".join(str(exc).split())
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or type(exc).__name__}{where} (at {stage or 'the end of the run'})"
    # A relation or grant gone under the run (a plain dbt build beside it): the line the
    # command prints, recorded too (racemap status, summary.json).
    if (known := known_database_error(exc)) is not None:
        return " ".join(str(known).split())
    return f"unexpected {type(exc).__name__}: {' '.join(str(exc).split())[:300]}"


def _record_failure(ctx: RunContext, exc: BaseException) -> BaseException:
    """A failed run: its summary published, its verdict recorded (held lock), its webhook;
    the exception to raise (an OSError becomes one RacemapError line)."""
    message = failure_message(exc, ctx.stages.current)
    summary = {
        **run_summary.run_header(
            ctx.run_id, ctx.db, ctx.seasons, ctx.options, stopped_at=ctx.stages.current
        ),
        "verdict": verdicts.FAILED,
        "error": message,
        "attention": [],
        **run_summary.validation_summary(ctx.validations),
        "changes": None,
        "stage_seconds": ctx.stages.seconds,
    }
    # A run that never got the lock leaves the reports to the racemap holding it (which may be
    # writing them now): it published a set of its failed summary alone over them, and the
    # holder's sync carried that over, the last run's mapping report and CSVs gone.
    others = isinstance(exc, runtime.LockHeld) or (
        ctx.awaiting_lock and isinstance(exc, KeyboardInterrupt)
    )
    try:
        if not others:
            report_set = ctx.report_set or reports.ReportSet(
                ctx.reports_dir, ctx.run_id, ctx.db, ctx.database_url
            )
            reports.write_summary(report_set.dir / "summary.json", summary)
            # The mapping report, when the run got that far, shows the verdict of a run that
            # finished: a failed run's set holds none (its summary.json says where it stopped).
            for name in reports.VERDICT_REPORTS:
                (report_set.dir / name).unlink(missing_ok=True)
            report_set.publish()
    except (RacemapError, OSError) as problem:
        if str(problem) != message:
            ctx.log(f"reports not published: {' '.join(str(problem).split())}")
    if ctx.locked:  # else the database was not reached, or runs another run
        changes_mod.record_run(ctx.db, ctx.run_id, summary, ctx.started_at, ctx.log)
    if not isinstance(exc, KeyboardInterrupt):
        _notify(ctx, summary)
    if isinstance(exc, KeyboardInterrupt):
        return Interrupted(message, getattr(exc, "signum", signal.SIGINT))
    return RacemapError(message) if isinstance(exc, OSError) else exc


def _notify(ctx: RunContext, summary: dict) -> None:
    """The run's webhook, when it needs a person, failed or changed something (notify.py)."""
    reports_dir = Path(ctx.reports_dir).resolve()
    notify.notify(ctx.notify_url, summary, reports_dir, ctx.secrets(), ctx.log)


def _run_locked(ctx: RunContext) -> RunResult:
    with ctx.stages.stage("migrate"):
        # Before anything changes (the races table's key columns included): racemap's tables
        # are this release's to upgrade, and its schemas hold nothing of the application's.
        with ctx.db.transaction() as conn:
            runtime.require_writable(conn, ctx.db.display)
            runtime.require_utf8(conn, ctx.db.display)
            migrations.check_database(conn, ctx.db.dbname)
        prepare_races(ctx.db, ctx.races, ctx.variables, ctx.options.dry_run, ctx.log)
        with ctx.db.transaction() as conn:
            ensure_raw_tables(conn)
        prepare_results(ctx.db, ctx.variables, ctx.log)
    # From here the run is in racemap.runs, unfinished at the stage it is in until it ends.
    ctx.stages.entered = functools.partial(
        changes_mod.record_stage,
        ctx.db,
        "runs",
        {
            "run_id": ctx.run_id,
            "started_at": ctx.started_at,
            "dry_run": bool(ctx.options.dry_run),
            "seasons": ",".join(str(s) for s in ctx.seasons),
        },
    )

    # The mapping report runs in the kernel the load's record notebook started (shut down
    # however the run ends).
    with NotebookRunner(ctx.out, shared=ctx.uses("shared_kernel")) as notebooks:
        with ctx.stages.stage("load"):
            # Loaded here, in racemap's process, so the progress bar shows on a terminal; the
            # notebook, run with load=False, is the record of this load (its raw.openf1_loads
            # rows). No URL or credential is a parameter: parameters are saved in the notebook.
            client = ctx.openf1_client()
            try:
                load_openf1(
                    ctx.db,
                    ctx.seasons,
                    offline=ctx.options.offline,
                    client=client,
                    refresh=ctx.options.refresh,
                    run_id=ctx.run_id,
                    environment=ctx.env,
                )
            finally:
                if client is not None:
                    client.close()
            notebooks.run(
                "load_openf1",
                {
                    "seasons": ",".join(str(s) for s in ctx.seasons),
                    "offline": ctx.options.offline,
                    "refresh": ctx.options.refresh,
                    "run_id": ctx.run_id,
                    "load": False,
                },
            )
        return _map_and_report(ctx, notebooks)


def _map_and_report(ctx: RunContext, notebooks: NotebookRunner) -> RunResult:
    """After the load: check the raw data, build, apply, validate, record and report."""
    db, out, stages, log = ctx.db, ctx.out, ctx.stages, ctx.log
    load = run_summary.load_counts(db, ctx.run_id)
    rejected = f"{load['rows_rejected']} rejected"
    if load["rows_rejected"]:  # their fetches do not settle: the next run asks again
        rejected += " (why: raw.openf1_rejects; fetched again by the next run)"
    log(
        f"loaded OpenF1 {', '.join(map(str, ctx.seasons))}: {plural(load['rows_loaded'], 'row')}, "
        f"{rejected}, {plural(load['requests'], 'HTTP request')}"
    )

    with stages.stage("validate_raw"):
        checking = ctx.checkpoint("raw")
        # While the checks run (in the GX worker): import dbt and parse the project. No query,
        # nothing built. A parse that fails leaves the build to parse and say why.
        if not dbt.parsed_before():
            ctx.log("dbt: parsing the project" + dbt.cold_start_note())
        try:
            manifest = dbt.parse(ctx.variables)
        except RacemapError:
            manifest = None
        outcome = checking.result()
        ctx.validations.append(outcome)
        if not outcome.success:
            # Stop before dbt and the apply: nothing is mapped from data that failed its checks.
            raise RacemapError("raw OpenF1 data failed validation: " + "; ".join(outcome.failed))

    with stages.stage("dbt_build"):
        dbt.build(ctx.variables, manifest)

    with stages.stage("apply"):
        applied = apply_mod.apply_updates(
            db,
            ctx.run_id,
            ctx.races,
            allow_changes=ctx.options.allow_changes,
            dry_run=ctx.options.dry_run,
        )

    with stages.stage("validate"):
        checking = ctx.checkpoint("mapping")
        # While the mapping checks run in the GX worker: dbt docs, generated only when the
        # project, the vars or the catalog changed (neither the apply nor the checks change
        # what they show).
        started = time.perf_counter()
        generated = _docs(db, out, ctx.variables, manifest)
        took = time.perf_counter() - started
        html_exporter()  # nbconvert imported for the report's HTML, while the checks still run
        ctx.validations.append(checking.result())
    log(
        "dbt docs: "
        + ("generated" if generated else "unchanged since the last run, kept")
        + f" ({took:.1f} s, within the validate stage)"
    )

    with stages.stage("changes"), db.transaction() as conn:
        changes = changes_mod.record_changes(
            conn, ctx.run_id, ctx.races, dry_run=ctx.options.dry_run
        )
    log(changes_mod.describe(changes))

    with stages.stage("reports"):
        with db.transaction() as conn:
            counts = reports.mapping_counts(conn)
            coverage = reports.mapping_coverage(conn)
            attention = reports.attention_rows(conn)
            freshness = status.freshness(conn, ctx.env)
            reports.write_csv(
                out / "unmapped_races.csv", reports.UNMAPPED_COLUMNS, reports.unmapped_rows(conn)
            )
        reports.write_csv(out / "mapping_updates.csv", reports.UPDATE_COLUMNS, applied.rows)
        reports.write_csv(out / "changes.csv", changes_mod.CHANGE_COLUMNS, changes["list"])
        failures = [f for v in ctx.validations for f in v.failed]
        attention_failures = [f for v in ctx.validations for f in v.attention]
        verdict = verdicts.decide(failures, [*attention, *attention_failures])
        summary = {
            **run_summary.run_header(ctx.run_id, db, ctx.seasons, ctx.options, stopped_at=None),
            "verdict": verdict,
            "attention": attention,
            "changes": changes,
            **counts,
            "updates": len(applied.rows),
            "updates_applied": applied.applied,
            "updates_conflicting": applied.conflicts,
            "updates_held_back": applied.count("held_back"),
            **run_summary.validation_summary(ctx.validations),
            "coverage": coverage,
            "coverage_threshold": ctx.threshold,
            "freshness": freshness,
            "openf1": load,
            "stage_seconds": stages.seconds,
        }
        # The mapping report notebook reads summary.json: written before it runs, and again
        # after it with the reports stage's own seconds.
        reports.write_summary(out / "summary.json", summary)
        write_mapping_report(notebooks, ctx.run_id, ctx.threshold)
    reports.write_summary(out / "summary.json", summary)
    return RunResult(ctx.run_id, summary, verdicts.exit_code(verdict), failures, verdict, attention)


def _docs(db: Database, out: Path, variables: dict, manifest) -> bool:
    """dbt docs into the reports (generated only when something they show changed)."""
    with db.transaction() as conn:
        return dbt.docs(out, variables, conn, manifest)[1]


def write_mapping_report(notebooks: NotebookRunner, run_id: str, threshold: float) -> Path:
    """notebooks/mapping_report.ipynb by papermill (after the load's record, in its kernel),
    then mapping_report.html."""
    reports_dir = notebooks.reports_dir
    executed = notebooks.run(
        "mapping_report",
        {
            "reports_dir": str(reports_dir.resolve()),
            "run_id": run_id,
            "coverage_threshold": threshold,
        },
    )
    return export_html(executed, reports_dir / "mapping_report.html")
