"""The reports of a run: CSVs of the marts and summary.json."""

from __future__ import annotations

import contextlib
import csv
import fcntl
import json
import os
import re
import shutil
from pathlib import Path

from racemap.db import query_dicts
from racemap.errors import RacemapError, printable
from racemap.paths import DEFAULT_REPORTS_DIR

# What racemap sync writes into the report set and a run carries over, until a sync renews
# them: the race pages and their index (race_page.INDEX).
SYNC_REPORTS = ("races", "race_pages.html")
# The report set a run writes (DESIGN.md's fixed paths), replaced as a whole when a run ends.
REPORT_SET = (
    "summary.json",
    "unmapped_races.csv",
    "mapping_updates.csv",
    "changes.csv",
    "mapping_report.html",
    "validation",
    "notebooks",
    "dbt-docs",
    *SYNC_REPORTS,
)
# What states a finished run's verdict: never in the set of a run that failed.
VERDICT_REPORTS = ("mapping_report.html", "notebooks/mapping_report.ipynb")
UNMAPPED_COLUMNS = [
    "race_id",
    "year",
    "name",
    "reason",
    "detail",
    "circuit_id",
    "candidate_count",
    "race_start_at",
]
UPDATE_COLUMNS = [
    "race_id",
    "race_name",
    "action",
    "status",
    "current_meeting_key",
    "current_session_key",
    "meeting_key",
    "session_key",
    "method",
    "reason",
]
ATTENTION_COLUMNS = [
    "race_id",
    "season",
    "race_name",
    "kind",
    "reason",
    "detail",
    "action",
    "held_meeting_key",
    "held_session_key",
    "meeting_key",
    "session_key",
]


# The published set is the directory the link ``current`` names; each fixed path of the set
# (``summary.json``, ``validation``, ...) is a link through ``current``. Swapping ``current``
# (one rename) replaces the whole set at once: a reader sees the previous set or the new one,
# never a mix, and a path the new set lacks is gone with it.
CURRENT = "current"
RUN_PREFIX = ".run-"


class ReportSet:
    """A run writes its reports into ``<reports>/.run-<id>`` and publishes them whole when it
    ends, success or failure: nothing of an earlier run can be read as this one's. A set still
    being written is locked (flock), so the folders of killed runs, and only those, are removed
    by the next run."""

    def __init__(self, reports_dir: Path, run_id: str, db=None, database_url: str | None = None):
        self.final = Path(reports_dir)
        self.dir = self.final / f"{RUN_PREFIX}{run_id}"
        self._lock = None
        self._made_folder = not self.final.exists()
        claim(self.final, db, database_url)  # before anything is written there
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._lock = _hold(self.dir)
        except OSError as exc:
            raise RacemapError(unwritable(self.final, exc)) from None
        remove_leftovers(self.final)

    def publish(self) -> Path:
        """Put this set in place of the published one (RacemapError when it cannot)."""
        try:
            _publish(self.final, self.dir)
        except OSError as exc:
            raise RacemapError(unwritable(self.final, exc)) from None
        finally:
            self.release()
        remove_leftovers(self.final)
        return self.final

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def discard(self) -> None:
        """Release this set and, unless it is the published one, remove it (a sync that stops
        publishes nothing), with the reports folder if this set made it and it holds nothing
        else: a sync that fails leaves the reports as they were."""
        self.release()
        if published(self.final) == self.dir.resolve():
            return
        shutil.rmtree(self.dir, ignore_errors=True)
        if self._made_folder and published(self.final) is None:
            (self.final / OWNER).unlink(missing_ok=True)  # claimed by this set alone
            with contextlib.suppress(OSError):  # not empty: another set, or the user's files
                self.final.rmdir()


# The database whose folder under reports/ this is (``reports/<database name>/`` is named by the
# name alone): ``host:port/dbname``, or ``embedded``.
OWNER = ".database"


def owner_key(db) -> str:
    return "embedded" if db.embedded else f"{db.host}:{db.port}/{db.dbname}"


def claim(reports_dir: Path, db=None, database_url: str | None = None) -> None:
    """A folder of the project's ``reports/`` belongs to one database: another database of the
    same name (another server's) would replace its set and carry its race pages and reports into
    its own. RacemapError when the folder is another database's: one that names another
    ``host:port/dbname`` (its file ``.database``) and whose published set holds no run of ``db``
    (the same database reached by another host name takes the folder over). Without ``db`` (a
    run that failed before it reached its database) the key of ``database_url`` must match."""
    final = Path(reports_dir)
    if final.resolve().parent != DEFAULT_REPORTS_DIR.resolve():
        return  # --reports-dir elsewhere: the user's own choice
    if db is None:
        from racemap.db import parse_database_url

        key = owner_key(parse_database_url(database_url)) if database_url else "embedded"
    else:
        key = owner_key(db)
    marker = final / OWNER
    held = marker.read_text(encoding="utf-8").strip() if marker.is_file() else None
    if held not in (None, key) and (db is None or not _holds_a_run_of(final, db)):
        raise RacemapError(
            f"{final} holds the reports of another database of that name ({held}), not of "
            f"{key}: give this one its own folder with --reports-dir DIR (or move {final} away)"
        )
    if held != key:
        try:
            final.mkdir(parents=True, exist_ok=True)
            marker.write_text(key + "\n", encoding="utf-8")
        except OSError as exc:
            raise RacemapError(unwritable(final, exc)) from None


def _holds_a_run_of(reports_dir: Path, db) -> bool:
    """Whether the published set of ``reports_dir`` is of a run or sync of ``db`` (nothing
    published: nothing to mix)."""
    import psycopg2

    source = published(reports_dir)
    if source is None:
        return True
    ids = {source.name.removeprefix(RUN_PREFIX)}
    with contextlib.suppress(OSError, ValueError, AttributeError):
        ids.add(str(json.loads((source / "summary.json").read_text(encoding="utf-8"))["run_id"]))
    try:
        with db.transaction() as conn:
            for table in ("runs", "sync_runs"):
                found = query_dicts(
                    conn,
                    "select 1 from pg_class where oid = to_regclass(%s)",
                    (f"racemap.{table}",),
                ) and query_dicts(
                    conn,
                    f"select 1 from racemap.{table} where run_id = any(%s) limit 1",
                    (sorted(ids),),
                )
                if found:
                    return True
    except (psycopg2.Error, RacemapError):
        return False
    return False


def unwritable(reports_dir: Path, exc: OSError) -> str:
    reason = exc.strerror or type(exc).__name__
    where = exc.filename or reports_dir
    return (
        f"cannot write the reports in {reports_dir} ({reason}: {where}): make that folder "
        "writable by this user, or give another with --reports-dir"
    )


def published(reports_dir: Path) -> Path | None:
    """The directory of the published set, if any."""
    link = Path(reports_dir) / CURRENT
    return link.resolve() if link.is_symlink() and link.resolve().is_dir() else None


def _hold(directory: Path):
    handle = (directory / ".lock").open("w")
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return handle


def remove_leftovers(reports_dir: Path) -> list[str]:
    """Remove the ``.run-*`` folders no run is writing and no link names (killed runs')."""
    keep = published(reports_dir)
    removed = []
    for path in Path(reports_dir).glob(f"{RUN_PREFIX}*"):
        if path == keep or not path.is_dir() or path.is_symlink():
            continue
        try:
            with (path / ".lock").open("a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a live run holds it
        except OSError:
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path.name)
    return removed


def _publish(final: Path, new: Path) -> None:
    current = final / CURRENT
    if current.exists() and not current.is_symlink():
        raise RacemapError(
            f"cannot publish the reports in {final}: {current} is not racemap's link to the "
            "published set; move it away"
        )
    (new / ".lock").unlink(missing_ok=True)
    names = [name for name in REPORT_SET if (new / name).exists()]
    for name in names:  # through ``current``: the old set's until the swap
        _link(final / name, f"{CURRENT}/{name}")
    _link(current, new.name)  # the swap
    for name in REPORT_SET:
        if name not in names:
            _remove(final / name)


def _link(path: Path, target: str) -> None:
    """``path`` becomes a link to ``target``, in one rename (an old real report is removed)."""
    if path.is_symlink() and os.readlink(path) == target:
        return
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)  # a report set written before sets were linked
    spare = path.with_name(f".{path.name}.new")
    _remove(spare)
    os.symlink(target, spare)
    os.replace(spare, path)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def write_csv(path: Path, columns: list[str], rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    return path


def unmapped_rows(conn) -> list[dict]:
    return query_dicts(
        conn,
        "select race_id, year, coalesce(name, race_id) as name, reason, detail, circuit_id,"
        " candidate_count, race_start_at from racemap.unmapped_races"
        " order by year, race_start_at, race_id",
    )


def mapping_counts(conn) -> dict:
    """Races mapped and unmapped by reason: the mapping's, and the rows of the races table
    without an id (in no mapping, which is keyed by the id: ``invalid_race`` in
    racemap.unmapped_races with a null race_id)."""
    rows = query_dicts(
        conn,
        "select status, reason, count(*) as n from ("
        " select status, reason from racemap.race_openf1_mapping"
        " union all"
        " select 'unmapped', reason from racemap.unmapped_races where race_id is null"
        ") as races group by status, reason",
    )
    mapped = sum(r["n"] for r in rows if r["status"] == "mapped")
    by_reason = {r["reason"]: r["n"] for r in rows if r["status"] == "unmapped"}
    return {
        "races": sum(r["n"] for r in rows),
        "mapped": mapped,
        "unmapped": sum(by_reason.values()),
        "unmapped_by_reason": dict(sorted(by_reason.items())),
        "results_check": results_check_counts(conn),
    }


def results_check_counts(conn) -> dict:
    """Mapped races per results_check (agree, disagree, no_results)."""
    rows = query_dicts(
        conn,
        "select results_check, count(*) as n from racemap.race_openf1_mapping"
        " where status = 'mapped' group by results_check order by results_check",
    )
    return {r["results_check"]: r["n"] for r in rows}


def mapping_coverage(conn) -> dict:
    """Coverage per season within OpenF1's coverage (racemap.mapping_coverage)."""
    rows = query_dicts(
        conn,
        "select season, races, races_expected, mapped, coverage"
        " from racemap.mapping_coverage order by season",
    )
    return {
        str(r["season"]): {
            "races": r["races"],
            "races_expected": r["races_expected"],
            "mapped": r["mapped"],
            "coverage": None if r["coverage"] is None else float(r["coverage"]),
        }
        for r in rows
    }


def attention_rows(conn, race_id: str | None = None) -> list[dict]:
    """The races needing a person now (racemap.races_needing_attention), oldest first; with
    ``race_id``, that race's rows alone."""
    return query_dicts(
        conn,
        "select race_id, season, coalesce(race_name, race_id, 'no name') as race_name, kind,"
        " reason, detail, action, held_meeting_key, held_session_key, meeting_key, session_key"
        " from racemap.races_needing_attention"
        " where %(race_id)s::text is null or race_id::text = %(race_id)s::text"
        " order by season nulls first, race_start_at nulls first, race_id",
        {"race_id": race_id},
    )


def attention_line(row: dict) -> str:
    """One line per race: who, what is wrong, what to do (a row without an id is named by its
    other fields, in its detail)."""
    season = f", {row['season']}" if row.get("season") else ""
    who = "a row without an id" if row.get("race_id") is None else f"race {row['race_id']}"
    line = f"{who} ({row['race_name']}{season}): {row['detail']} — {row['action']}"
    return printable(line)  # the race's id, name and detail are the application's text


def write_summary(path: Path, summary: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def database_reports_dir(database_url: str | None) -> Path:
    """The default reports folder of a database: ``reports/<database name>/`` of
    ``database_url`` (the command's, or DATABASE_URL as the command started), the embedded
    one's ``reports/embedded/`` when it is None. Decided from what the user gave, never from the
    environment later: starting the embedded database exports its own URL for the kernels."""
    from racemap.db import parse_database_url

    name = parse_database_url(database_url).dbname if database_url else "embedded"
    label = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).lstrip(".") or "_"
    return DEFAULT_REPORTS_DIR / label


def carry_over(
    reports_dir: Path, into: Path, skip: tuple[str, ...] = (), only: tuple[str, ...] = REPORT_SET
) -> None:
    """Copy the published set's reports (``only`` those) but ``skip`` into a new set: ``racemap
    validate`` keeps all but the Data Docs, a run the race pages, a sync all but the Data Docs."""
    source = published(reports_dir)
    if source is None:
        return
    for name in only:
        if name in skip or not (source / name).exists():
            continue
        if (source / name).is_dir():
            shutil.copytree(source / name, into / name)
        else:
            shutil.copy2(source / name, into / name)
