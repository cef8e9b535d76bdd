"""``racemap sync`` end to end: load the race data, build its marts, check them, render the race
pages, and give the verdict (``racemap run --race-data`` runs the same after the run).

1. racemap/openf1/sync.py loads the mapped sessions' race data into raw tables;
2. ``dbt build --select tag:race_data`` builds the marts and race_data_checks with their tests
   (and the driver link again, from the application's results as they are now);
3. the Great Expectations checkpoint ``race_data`` (racemap/checks/race_data.py): a failed check
   of the race data is attention, naming the race and the driver;
4. the page (notebooks/race_session.ipynb) of each synced session whose page is missing or
   shows an older version of its race data (:func:`data_versions`), into
   ``<reports>/races/<race_id>.ipynb`` and ``.html`` for a race, ``races/sprint/<race_id>.*``
   for a sprint (``race_page.page_path``); the other pages are kept.

Steps 3 and 4 write a new report set of the database (the published one carried over, with new
Data Docs and race pages, and ``race_pages.html`` listing the pages) and publish it whole, as a
run does (racemap/reporting/reports.py).

The verdict follows the run's rule: ``failed`` (exit 1) when a step fails, ``attention`` (exit 3)
when a check names a race, ``ok`` (exit 0) otherwise.
"""

from __future__ import annotations

import contextlib
import functools
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from psycopg2 import sql

from racemap import runtime
from racemap import verdict as verdicts
from racemap.db import Database
from racemap.errors import Interrupted, RacemapError
from racemap.openf1 import endpoints
from racemap.openf1.sync import SyncResult, SyncRun, sync_race_data
from racemap.reporting import plural, race_page, reports
from racemap.reporting.changes import record_stage
from racemap.settings import Environment, RacesTable


@dataclass(frozen=True)
class RaceDataRun:
    """What one sync's steps read, built once at the edge (``racemap sync``, ``racemap run
    --race-data``, a test): the sync's request and settings (``sync``), and where its reports
    go; each step's one argument."""

    sync: SyncRun
    reports_dir: Path  # the database's report set (reports/<database name>/)
    variables: dict | None = None  # the dbt vars, validated
    pages: bool = True
    notify_url: str | None = None  # the webhook told of a sync needing a person or failed

    @property
    def db(self) -> Database:
        return self.sync.db

    @property
    def env(self) -> Environment:
        return self.sync.env

    @property
    def run_id(self) -> str:
        return self.sync.run_id

    @property
    def log(self) -> Callable[[str], None]:
        return self.sync.log


@dataclass
class RaceDataResult:
    sync: SyncResult
    attention: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    pages: list[Path] = field(default_factory=list)
    failed_at: str | None = None  # the step whose failures these are: validate or pages

    @property
    def verdict(self) -> str:
        return verdicts.decide(self.failures, self.attention)

    @property
    def exit_code(self) -> int:
        return verdicts.exit_code(self.verdict)


class Page(NamedTuple):
    """A page of the sync: the race's session of ``kind`` (race, sprint, ...)."""

    race_id: str
    kind: str = "race"

    @property
    def label(self) -> str:
        return f"{self.kind} page of race {self.race_id}"

    def path(self, reports_dir: Path, suffix: str = ".html") -> Path:
        return race_page.page_path(reports_dir, self.race_id, self.kind, suffix)


def data_versions(db: Database, result: SyncResult) -> dict[Page, str]:
    """Per session of the sync with race data, in the order synced, the version of the race
    data its page shows: when it last changed (the latest ``loaded_at`` or ``removed_at`` of
    the session's rows in the race data tables: a row new, changed, listed again or no longer
    listed), a digest of the marts' rows the page shows (``race_page.shown_digests``: the
    application's driver ids change them too), and of the code that lays the page out
    (``race_page.page_code_version``: a page an earlier release rendered is rendered again).
    A session with no row is left out: it has no page."""
    keys = sorted({s.session_key for s in result.sessions})
    if not keys:
        return {}
    per_table = sql.SQL(" union all ").join(
        sql.SQL(
            "select session_key, max(greatest(loaded_at, removed_at)) as changed_at"
            " from {} where session_key = any(%(keys)s) group by session_key"
        ).format(endpoint.relation)
        for endpoint in endpoints.RACE_DATA
    )
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(
            sql.SQL("select session_key, max(changed_at) from ({}) t group by session_key").format(
                per_table
            ),
            {"keys": keys},
        )
        changed = dict(cur.fetchall())
        # What the page shows also comes from the application (its driver ids, through its
        # results): a page whose rows changed with no OpenF1 row new is another version too.
        shown = {
            kind: race_page.shown_digests(
                conn, sorted({s.race_id for s in result.sessions if s.session_kind == kind}), kind
            )
            for kind in {s.session_kind for s in result.sessions}
        }
    versions: dict[Page, str] = {}
    for session in result.sessions:
        at = changed.get(session.session_key)
        if at is not None:
            page = Page(session.race_id, session.session_kind)
            version = at.astimezone(UTC).isoformat()  # the same text whatever the TimeZone
            versions[page] = max(versions.get(page, version), version)
    code = race_page.page_code_version()
    return {
        page: f"{at} rows {shown[page.kind].get(page.race_id, 'none')} page {code}"
        for page, at in versions.items()
    }


def page_version(reports_dir: Path, page: Page) -> str | None:
    """The race data version the page in the report set ``reports_dir`` shows (its
    ``data_version`` parameter), None without a page (or an HTML page without its notebook)."""
    path = page.path(reports_dir)
    return race_page.page_parameter(path, "data_version") if path.exists() else None


def pages_to_render(versions: dict[Page, str], reports_dir: Path) -> list[Page]:
    """The pages missing or showing an older version of their race data, in the order synced.
    A page whose data is as it shows is kept (``--offline`` loads every session again: a
    second sync renders nothing)."""
    return [p for p, version in versions.items() if page_version(reports_dir, p) != version]


def build_and_check(run: RaceDataRun, out: Path, state: Path | None = None, stages=None):
    """Steps 2 and 3: the marts built, then checked, their Data Docs written into ``out``;
    (failures, attention lines). Run inside ``runtime.database_state`` (``state``: its
    directory) or, without one, in its own. ``stages``: the sync's (``pipeline.Stages``), to
    name the one an interrupt stops."""
    if state is None:
        with runtime.database_state(run.db, run.env.racemap_state_dir) as own:
            return build_and_check(run, out, own, stages)
    from racemap.checks import race_data as checks
    from racemap.mapping import dbt
    from racemap.pipeline import Stages

    stages = stages or Stages(lambda _line: None)
    run.log("-> dbt build --select tag:race_data")
    with stages.stage("dbt_build"):
        dbt.build_race_data(run.variables)
    run.log("-> race data checks")
    with stages.stage("validate"):
        outcome = checks.run_checkpoint(
            run.db,
            Path(out),
            f"{run.run_id}-race_data",
            gx_root=state / "gx-root",
            keep_runs=run.env.racemap_data_docs_runs,
        )
    return outcome.failed, outcome.attention


def render_pages(
    pages: Sequence[Page],
    reports_dir: Path,
    log: Callable[[str], None] = print,
    versions: dict[Page, str] | None = None,
    shared_kernel: bool = True,
    races: RacesTable | None = None,
) -> tuple[list[Path], list[str]]:
    """Step 4, inside ``runtime.database_state`` (the page's kernel reads the database from the
    environment written there): (the pages' HTML, a failure line per page that failed). Each
    page records the race data version it shows (``versions``, :func:`data_versions`).

    The pages share one kernel (``notebooks.SharedKernel``: a new session for each page), which
    saves each page after the first its kernel's start and imports; ``shared_kernel=False``
    (the plain call ``racemap bench --parts pages`` measures it against) starts one per page.
    ``races``: the application's races table, where each page looks its race's keys up."""
    from racemap.reporting.notebooks import SharedKernel

    written: list[Path] = []
    failures: list[str] = []
    with SharedKernel() if shared_kernel else contextlib.nullcontext() as kernel:
        for page in pages:
            log(f"-> {page.label}")
            try:
                version = (versions or {}).get(page)
                written.append(
                    race_page.render(
                        page.race_id,
                        reports_dir,
                        page.kind,
                        data_version=version,
                        kernel=kernel,
                        races=races,
                    )
                )
            except (RacemapError, OSError) as exc:  # OSError: a page it could not write
                failures.append(f"{page.label}: {exc}")
                # The executed notebook stays, to read why; the HTML of before shows other data.
                page.path(reports_dir).unlink(missing_ok=True)
    return written, failures


def sync_and_check(run: RaceDataRun) -> RaceDataResult:
    """Steps 1 to 4 under the caller's run lock. A RacemapError of the load or the build
    propagates (the caller prints its one line, exit 1); an interrupt names the stage it
    stopped (load, dbt_build, validate, pages: "interrupted during dbt_build"), as a run's
    does."""
    from racemap.pipeline import Stages, failure_message

    started_at = datetime.now(UTC)
    stages = Stages(lambda _line: None)  # the steps print their own lines
    # In racemap.sync_runs, unfinished at the stage it is in, until it ends (once its load has
    # made or upgraded the table).
    stages.entered = functools.partial(
        record_stage, run.db, "sync_runs", {"run_id": run.run_id, "started_at": started_at}
    )
    try:
        result = _sync_and_check(run, stages)
    except BaseException as exc:  # recorded failed where it stopped, then on its way
        message = failure_message(exc, stages.current)
        record_sync(run, started_at, verdicts.FAILED, stopped_at=stages.current, error=message)
        if isinstance(exc, KeyboardInterrupt):
            raise Interrupted(message, getattr(exc, "signum", signal.SIGINT)) from None
        notify(run, verdicts.FAILED, stopped_at=stages.current, error=message)
        raise
    record_sync(run, started_at, result.verdict, result=result, stopped_at=result.failed_at)
    notify(
        run,
        result.verdict,
        stopped_at=result.failed_at,
        error="; ".join(result.failures) or None,
        attention=result.attention,
    )
    return result


def notify(run: RaceDataRun, verdict: str, stopped_at=None, error=None, attention=()) -> None:
    """The sync's webhook (racemap/reporting/notify.py), when it needs a person or failed (a
    sync that never got the run lock too: ``racemap sync``'s caller)."""
    from racemap.reporting import notify

    summary = {
        "command": "sync",
        "run_id": run.run_id,
        "verdict": verdict,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "database": run.db.display,
        "stopped_at": stopped_at,
        "error": error,
        "attention": list(attention),
    }
    reports_dir = Path(run.reports_dir).resolve()
    notify.notify(run.notify_url, summary, reports_dir, run.env.secrets(run.db), run.log)


def record_sync(
    run: RaceDataRun,
    started_at: datetime,
    verdict: str,
    result: RaceDataResult | None = None,
    stopped_at: str | None = None,
    error: str | None = None,
) -> None:
    """``racemap.sync_runs``: this sync's verdict, as ``racemap.runs`` holds a run's (``racemap
    status`` shows the last); never raises (``changes.record_verdict``). A sync that stopped
    before racemap's tables were upgraded (its load does that first) is not recorded."""
    from racemap.reporting.changes import record_verdict

    failures = "; ".join(result.failures) if result and result.failures else None
    row = {
        "run_id": run.run_id,
        "started_at": started_at,
        "verdict": verdict,
        "stopped_at": stopped_at,
        "error": error or failures,
        "sessions": len(result.sync.sessions) if result else None,
        "pages": len(result.pages) if result else None,
        "attention_count": len(result.attention) if result else 0,
    }
    record_verdict(run.db, "sync_runs", row, f"sync {run.run_id}", run.log)


def _sync_and_check(run: RaceDataRun, stages) -> RaceDataResult:
    report_set = None
    try:
        with stages.stage("load"):
            # The database's published report set again, with new Data Docs and race pages:
            # written aside and published whole, so a reader never sees half of it. Made first:
            # a reports folder that cannot be written stops the sync before it loads anything.
            report_set = reports.ReportSet(run.reports_dir, run.run_id, run.db)
            synced = sync_race_data(run.sync)
        result = RaceDataResult(synced)
        with runtime.database_state(run.db, run.env.racemap_state_dir) as state:
            reports.carry_over(run.reports_dir, report_set.dir, skip=("validation",))
            result.failures, result.attention = build_and_check(run, report_set.dir, state, stages)
            if result.failures:
                result.failed_at = "validate"
            elif run.pages:
                result.pages, result.failures = _render_pages(run, synced, report_set.dir, stages)
                result.failed_at = "pages" if result.failures else None
            report_set.publish()
    finally:
        if report_set is not None:
            report_set.discard()  # the published set stays; an unpublished one goes
    return result


def _render_pages(run: RaceDataRun, synced: SyncResult, out: Path, stages):
    """Step 4 for the sync: the pages whose data version changed (all with --refresh) rendered
    into the report set ``out``, and the index; (the pages as published, failure lines)."""
    from racemap.reporting.report_data import refresh_race_pages_line

    versions = data_versions(run.db, synced)
    # --refresh renders every page again (the application's results, say, changed).
    pages = list(versions) if run.sync.refresh else pages_to_render(versions, out)
    if kept := len(versions) - len(pages):
        run.log(f"pages of {plural(kept, 'session')} kept: their race data did not change")
    with stages.stage("pages"):
        written, failures = render_pages(
            pages, out, run.log, versions, races=RacesTable.from_vars(run.variables)
        )
        with run.db.transaction() as conn:
            race_page.write_index(conn, out)
        refresh_race_pages_line(out)  # the run's mapping report counts them
    return [Path(run.reports_dir) / page.relative_to(out) for page in written], failures
