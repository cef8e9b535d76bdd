"""The ``racemap`` command line: run, migrate, lookup, restore, validate, status, export, sync,
bench.

Exit codes (every command, racemap/verdict.py): 0 ok; 3 attention (a race needs a person, each
named on a line with what to do); 1 failed (one line saying what went wrong, never a traceback);
2 usage; 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import sys
from pathlib import Path

from racemap import verdict
from racemap.errors import (
    Interrupted,
    RacemapError,
    UsageError,
    check_interrupted,
    known_database_error,
    one_line,
    printable,
    signals_handled,
)
from racemap.reporting import plural


class Parser(argparse.ArgumentParser):
    """argparse's usage errors as one line (exit 2), naming the help to read, without a secret:
    argparse repeats what it could not use (``unrecognized arguments: --notify-url URL``, a
    mistyped ``--database-url``), shown as :func:`racemap.db.masked_argv` shows it."""

    _given: list[str] = []

    def parse_known_args(self, args=None, namespace=None):
        self._given = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str):
        from racemap.db import masked_argv

        for given, shown in zip(self._given, masked_argv(self._given), strict=True):
            if given != shown:
                message = message.replace(given, shown)
        self.exit(2, f"racemap: {message} (see {self.prog} --help)\n")


def seconds_option(text: str) -> float:
    """An argparse type: 0 or more seconds (--lock-timeout; racemap bench's --max-build-seconds)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"give 0 or more seconds, not {text}")
    return value


def _http_url(text: str) -> str:
    """An argparse type: an http(s) URL with a host (--openf1-url, --notify-url); the error
    does not repeat the URL (it may carry a token)."""
    from racemap.settings import http_url

    try:
        return http_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc}: give http(s)://host/...") from None


def _race_id(text: str) -> str:
    """A race id as the application's table holds it (text, kept as given), never blank."""
    if not text.strip():
        raise argparse.ArgumentTypeError("give a race id, e.g. --race-id 1125")
    return text


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        help="PostgreSQL URL (default: $DATABASE_URL, else "
        "the embedded database in .racemap/pgdata)",
    )
    parser.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="dbt var, repeatable (races_schema, races_table, race_id_column, ...)",
    )


def _lock_timeout(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lock-timeout",
        type=seconds_option,
        default=600.0,
        metavar="SECONDS",
        help="how long to wait for another run on the same database (default 600)",
    )


def _reports_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--reports-dir",
        type=Path,
        help="where the report set goes (default: reports/<database name>/, e.g. "
        "reports/embedded/)",
    )


def _database_reports_dir(args) -> Path:
    """``--reports-dir``, else the database's own folder ``reports/<database name>/``."""
    from racemap.reporting import reports

    return args.reports_dir or reports.database_reports_dir(
        args.database_url or args.environment.database_url
    )


def build_parser() -> argparse.ArgumentParser:
    from racemap import __version__

    # The module's docstring, without its reStructuredText marks, for a terminal.
    parser = Parser(prog="racemap", description=(__doc__ or "").replace("``", ""))
    parser.add_argument("--version", action="version", version=f"racemap {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="migrate, load, dbt build, apply, validate, report")
    _common(run)
    run.add_argument("--seasons", help="e.g. 2023-2025 (default: 2023 to this year)")
    source = run.add_mutually_exclusive_group()
    source.add_argument(
        "--offline",
        action="store_true",
        help="read the bundled OpenF1 snapshot (data/openf1/snapshot)",
    )
    source.add_argument(
        "--openf1-url",
        type=_http_url,
        help="OpenF1 base URL (default: $OPENF1_URL or the public API)",
    )
    run.add_argument("--refresh", action="store_true", help="fetch settled seasons again")
    run.add_argument("--dry-run", action="store_true", help="everything but the apply")
    run.add_argument(
        "--allow-changes",
        action="store_true",
        help="replace keys a race already holds when the mapping differs",
    )
    _reports_dir(run)
    run.add_argument(
        "--race-data",
        action="store_true",
        help="then racemap sync of the run's seasons (race data, checks, race pages)",
    )
    _notify_url(run, "a run needing attention, failing or changing something")
    _lock_timeout(run)
    # racemap bench --parts devices: the run with a concurrency device replaced by the plain
    # call (pipeline.DEVICES), to measure what it saves. Not for everyday use: hidden.
    run.add_argument("--plain", default="", help=argparse.SUPPRESS)

    migrate = sub.add_parser(
        "migrate", help="give the races table its two unique key columns (as the table's owner)"
    )
    _common(migrate)

    lookup = sub.add_parser("lookup", help="a race's keys, or a meeting's race")
    _common(lookup)
    which = lookup.add_mutually_exclusive_group(required=True)
    which.add_argument("--race-id", type=_race_id)
    which.add_argument("--meeting-key", type=int)
    add_session_argument(lookup)

    restore = sub.add_parser(
        "restore", help="put back the keys as before the latest apply not yet restored"
    )
    _common(restore)
    restore.add_argument("--run-id", help="the apply to undo (default: the latest not restored)")
    _lock_timeout(restore)

    validate = sub.add_parser("validate", help="run the Great Expectations checkpoints alone")
    _common(validate)
    _reports_dir(validate)
    _lock_timeout(validate)

    status = sub.add_parser(
        "status", help="last run, races needing attention, changes, freshness (database only)"
    )
    status.add_argument(
        "--database-url",
        help="PostgreSQL URL (default: $DATABASE_URL, else the embedded database)",
    )
    status.add_argument("--json", action="store_true", help="print it all as one JSON object")

    add_export_parser(sub)
    add_sync_parser(sub)

    bench = sub.add_parser("bench", help="the benchmarks; writes reports/bench.json")
    _common(bench)
    from benchmarks import add_arguments

    add_arguments(bench)
    return parser


def _db(args):
    from racemap.db import resolve_database

    return resolve_database(args.database_url or args.environment.database_url)


def cmd_run(args) -> int:
    from racemap.pipeline import RunOptions, run
    from racemap.reporting.reports import attention_line
    from racemap.reporting.run_summary import format_summary
    from racemap.settings import parse_vars

    result = run(
        RunOptions(
            database_url=args.database_url,
            seasons=args.seasons,
            offline=args.offline,
            openf1_url=args.openf1_url,
            refresh=args.refresh,
            dry_run=args.dry_run,
            allow_changes=args.allow_changes,
            reports_dir=args.reports_dir,
            variables=parse_vars(args.var),
            lock_timeout=args.lock_timeout,
            notify_url=args.notify_url,
            environment=args.environment,
            plain=frozenset(d.strip() for d in args.plain.split(",") if d.strip()),
        )
    )
    print(format_summary(result.summary))
    print(f"reports in {result.reports_dir}")
    for row in result.attention:
        print("attention: " + attention_line(row), file=sys.stderr)
    if result.failures:
        print(printable("validation failed: " + "; ".join(result.failures)), file=sys.stderr)
    if args.race_data:
        return _run_race_data(args, result.exit_code, result.reports_dir)
    return result.exit_code


def cmd_migrate(args) -> int:
    from racemap import runtime
    from racemap.pipeline import migrate_races
    from racemap.settings import RacesTable, parse_vars

    variables = parse_vars(args.var)
    races = RacesTable.from_vars(variables)
    db = _db(args)
    with runtime.database_state(db, args.environment.racemap_state_dir):
        added = migrate_races(db, races, variables)
    if not added:
        print(f"{races.name} already has openf1_meeting_key and openf1_session_key (unique)")
    return verdict.EXIT_OK


def cmd_lookup(args) -> int:
    from racemap.mapping.lookup import race_for_meeting, race_keys
    from racemap.settings import RacesTable, parse_vars

    if args.session is not None:
        return lookup_session(args)
    races = RacesTable.from_vars(parse_vars(args.var))
    db = _db(args)
    with db.transaction() as conn:
        if args.race_id is not None:
            keys = race_keys(conn, args.race_id, races)
            race_id = keys.race_id
            print(
                printable(
                    f"race {keys.race_id}: meeting_key {keys.meeting_key}, "
                    f"session_key {keys.session_key}"
                )
            )
        else:
            race_id = race_for_meeting(conn, args.meeting_key, races)
            print(printable(f"meeting {args.meeting_key}: race_id {race_id}"))
        _race_attention(conn, race_id)
    return verdict.EXIT_OK


def _race_attention(conn, race_id: str) -> None:
    """A lookup answers the keys the races table holds; when the race needs a person (keys the
    mapping disagrees with, a meeting called off since...), its attention line goes beside the
    answer, on standard error."""
    from racemap.db import relation_exists
    from racemap.reporting.reports import attention_line, attention_rows

    if not relation_exists(conn, "racemap", "races_needing_attention"):
        # A run's build drops the view (and makes it again); a run killed there left it
        # missing. The keys answered stand: the lookup failed (exit 1) while every run built.
        print(
            "attention: not checked: racemap.races_needing_attention is not there (a run "
            "is rebuilding it, or one stopped during its build: racemap status says which)",
            file=sys.stderr,
        )
        return
    for row in attention_rows(conn, str(race_id)):
        print("attention: " + attention_line(row), file=sys.stderr)


def add_session_argument(lookup: argparse.ArgumentParser) -> None:
    from racemap.mapping.lookup import SESSION_KINDS

    lookup.add_argument(
        "--session",
        choices=SESSION_KINDS,
        metavar="KIND",
        help=f"with --race-id: which session of the weekend ({', '.join(SESSION_KINDS)}; "
        "default race)",
    )


def lookup_session(args) -> int:
    """``racemap lookup --race-id ID --session KIND``: one session of the race's weekend."""
    from racemap.mapping.lookup import race_session_key
    from racemap.settings import RacesTable, parse_vars

    if args.race_id is None:
        raise UsageError("lookup: --session goes with --race-id")
    db = _db(args)
    races = RacesTable.from_vars(parse_vars(args.var))
    with db.transaction() as conn:
        found = race_session_key(conn, args.race_id, args.session, races)
        print(
            printable(
                f"race {found.race_id}: meeting_key {found.meeting_key}, "
                f"session_key {found.session_key} ({found.kind})"
            )
        )
        _race_attention(conn, found.race_id)
    return verdict.EXIT_OK


def cmd_restore(args) -> int:
    from racemap import runtime
    from racemap.mapping.apply import restore_last_apply
    from racemap.pipeline import new_run_id
    from racemap.settings import RacesTable, parse_vars

    races = RacesTable.from_vars(parse_vars(args.var))
    db = _db(args)
    run_id = new_run_id()
    # Under the run lock: two restores at once both undid the same apply (the second recorded a
    # restore of it too, every race "changed since"), and one during a run's apply or changes
    # undid keys the run went on to report as its own.
    with runtime.run_lock(db, run_id, args.lock_timeout, command="restore"):
        result = restore_last_apply(db, run_id, races, target_run_id=args.run_id)
    for applied, restored_by in result.already_restored:
        print(f"run {applied} was already restored (by run {restored_by})")
    restored = plural(result.restored, "race")
    print(f"restored {restored} to their keys before run {result.restores_run_id}")
    if result.skipped:
        print(f"left alone (changed since): {', '.join(result.skipped)}")
    print("to undo another apply: racemap restore --run-id RUN_ID")
    return verdict.EXIT_OK


def cmd_validate(args) -> int:
    from racemap.pipeline import validate
    from racemap.reporting.reports import attention_line
    from racemap.settings import RacesTable, coverage_threshold, parse_vars

    variables = parse_vars(args.var)
    threshold = coverage_threshold(variables)
    races = RacesTable.from_vars(variables)
    db = _db(args)
    _require_a_run(db, races)
    reports_dir = _database_reports_dir(args)
    result = validate(db, races, threshold, reports_dir, args.environment, args.lock_timeout)
    for outcome in result.outcomes:
        print(
            f"{outcome.checkpoint}: {'passed' if outcome.passed else 'FAILED'} "
            f"({outcome.evaluated} expectations)"
        )
    print(f"Data Docs: {reports_dir / 'validation' / 'index.html'}")
    for row in result.races_needing:
        print("attention: " + attention_line(row), file=sys.stderr)
    if not result.races_needing:  # e.g. another relation validated than the mapping reads
        for line in result.attention:
            print("attention: " + line, file=sys.stderr)
    if result.failed:
        print(printable("validation failed: " + "; ".join(result.failed)), file=sys.stderr)
    return verdict.exit_code(result.verdict)


def _require_a_run(db, races) -> None:
    """The checkpoints read what a run built, and the races table: none yet, or no such table,
    is one line saying so."""
    from racemap.db import relation_exists
    from racemap.runtime import require_races_table

    with db.transaction() as conn:
        built = relation_exists(conn, "racemap", "race_openf1_mapping")
        if built:
            require_races_table(conn, races)
    if not built:
        raise RacemapError(
            f"no racemap run on {db.display} yet: run `racemap run` first "
            "(validate checks what a run loaded and built)"
        )


def cmd_status(args) -> int:
    from racemap.reporting.status import main as status_main

    try:
        return status_main(
            args.database_url or args.environment.database_url, args.json, args.environment
        )
    except Exception as exc:
        error = exc if isinstance(exc, RacemapError) else known_database_error(exc)
        if error is None:
            raise
        if args.json:  # always JSON on standard output, the error in it
            print(json.dumps({"verdict": verdict.FAILED, "error": one_line(error)}))
        raise error from None


def add_export_parser(sub) -> None:
    export = sub.add_parser("export", help="the crosswalk, one row per race (csv, json, parquet)")
    _common(export)
    export.add_argument("--format", required=True, choices=("csv", "json", "parquet"))
    export.add_argument(
        "--output", required=True, type=Path, metavar="PATH", help="a file, or - for stdout"
    )


def cmd_export(args) -> int:
    from racemap.reporting.export import export_crosswalk
    from racemap.settings import parse_vars

    variables = parse_vars(args.var)
    db = _db(args)
    with db.transaction() as conn:
        count = export_crosswalk(conn, args.format, args.output, variables)
    to_stdout = str(args.output) == "-"  # the data on standard output, the line beside it
    where = "standard output" if to_stdout else args.output
    stream = sys.stderr if to_stdout else sys.stdout
    print(f"exported {plural(count, 'race')} to {where} ({args.format})", file=stream)
    return verdict.EXIT_OK


def _notify_url(parser, told_of: str) -> None:
    parser.add_argument(
        "--notify-url",
        type=_http_url,
        help=f"webhook (e.g. Slack incoming) told of {told_of} (default: $RACEMAP_NOTIFY_URL)",
    )


def add_sync_parser(sub) -> None:
    sync = sub.add_parser("sync", help="the race data (laps, stints, ...) of the mapped races")
    sync.add_argument(
        "--database-url",
        help="PostgreSQL URL (default: $DATABASE_URL, else the embedded database)",
    )
    sync.add_argument("--seasons", help="e.g. 2023-2025 (default: 2023 to this year)")
    sync.add_argument(
        "--race-id", action="append", default=[], type=_race_id, metavar="ID", help="repeatable"
    )
    sync.add_argument("--sessions", help="session kinds, e.g. race,sprint,qualifying")
    sync.add_argument("--endpoints", help="e.g. laps,stints (default: all but car_data,location)")
    source = sync.add_mutually_exclusive_group()
    source.add_argument("--offline", action="store_true", help="read the bundled snapshot")
    source.add_argument(
        "--openf1-url", type=_http_url, help="OpenF1 base URL (default: $OPENF1_URL or public)"
    )
    sync.add_argument(
        "--refresh",
        action="store_true",
        help="fetch settled sessions again and render every race page again",
    )
    _reports_dir(sync)
    sync.add_argument("--var", action="append", default=[], metavar="NAME=VALUE", help="dbt var")
    _notify_url(sync, "a sync needing attention or failing")
    _lock_timeout(sync)


def cmd_sync(args) -> int:
    from racemap.openf1 import sync
    from racemap.settings import parse_seasons

    seasons = parse_seasons(args.seasons) if args.seasons or not args.race_id else None
    return _race_data_verdict(
        _sync_and_check(
            args,
            _database_reports_dir(args),
            seasons,
            race_ids=args.race_id,
            kinds=sync.parse_kinds(args.sessions),
            chosen=sync.parse_endpoints(args.endpoints, args.race_id),
        )
    )


def _sync_and_check(args, reports_dir: Path, seasons, **selection):
    """race_data.sync_and_check under the run lock, with the OpenF1 source and the settings of
    ``args`` (``racemap sync`` and ``racemap run --race-data``)."""
    from racemap import runtime
    from racemap.openf1.client import OpenF1Client
    from racemap.openf1.sync import SyncRun
    from racemap.pipeline import new_run_id
    from racemap.race_data import RaceDataRun, notify, sync_and_check
    from racemap.settings import parse_vars

    variables = parse_vars(args.var)
    db = _db(args)
    client = (
        None
        if args.offline
        else OpenF1Client(base_url=args.openf1_url, environment=args.environment)
    )
    sync = SyncRun(
        db,
        seasons,
        offline=args.offline,
        client=client,
        refresh=args.refresh,
        run_id=new_run_id(),
        env=args.environment,
        **selection,
    )
    notify_url = args.notify_url or args.environment.racemap_notify_url
    run = RaceDataRun(sync, reports_dir, variables, notify_url=notify_url)
    try:
        with runtime.run_lock(db, sync.run_id, args.lock_timeout, command="sync"):
            return sync_and_check(run)
    except runtime.LockHeld as exc:  # it never started: nothing recorded, but told
        notify(run, verdict.FAILED, error=str(exc))
        raise
    finally:
        if client is not None:
            client.close()


def _race_data_verdict(result) -> int:
    """What ``racemap sync`` (and ``run --race-data``) prints of its result; its exit code."""
    print(result.sync.summary())
    for page in result.pages:
        print(printable(f"race page: {page}"))
    for line in result.attention:
        print("attention: " + line, file=sys.stderr)
    if result.failures:
        what = "race pages" if result.failed_at == "pages" else "race data checks"
        print(printable(f"{what} failed: " + "; ".join(result.failures)), file=sys.stderr)
    print(f"race data verdict: {result.verdict}")
    return result.exit_code


def _run_race_data(args, run_exit_code: int, reports_dir: Path) -> int:
    """``racemap run --race-data``: after the run, the sync of its seasons (not after a failed
    run); the exit code is the worse of the two verdicts."""
    from racemap.settings import parse_seasons

    if run_exit_code == verdict.EXIT_FAILED:
        return run_exit_code
    try:
        result = _sync_and_check(args, reports_dir, parse_seasons(args.seasons))
    except Interrupted as exc:  # the sync's stage, not the run's: the run is done and recorded
        raise Interrupted(
            f"{exc} of the race data sync (the run itself finished)", exc.signum
        ) from None
    return verdict.worst_exit_code(run_exit_code, _race_data_verdict(result))


def cmd_bench(args) -> int:
    from benchmarks import main as bench_main

    return bench_main(args)


COMMANDS = {
    "run": cmd_run,
    "migrate": cmd_migrate,
    "lookup": cmd_lookup,
    "restore": cmd_restore,
    "validate": cmd_validate,
    "status": cmd_status,
    "bench": cmd_bench,
    "export": cmd_export,
    "sync": cmd_sync,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from racemap.db import scrub_argv
    from racemap.settings import load_environment

    scrub_argv()  # dbt records sys.argv: no --database-url password in its logs or artifacts
    try:
        # Every environment variable, read and validated once, before any command runs.
        args.environment = load_environment()
    except UsageError as exc:
        print(f"racemap: {one_line(exc)}", file=sys.stderr)
        return verdict.EXIT_USAGE
    # Ctrl-C and SIGTERM stop the command with one line and exit 130 / 143, even where Python
    # dropped the interrupt (racemap.errors).
    with signals_handled(), _racemap_lines():
        return _command(args)


@contextlib.contextmanager
def _racemap_lines():
    """racemap's own warnings (an OpenF1 fetch asked again: why, for how long, how to stop) as
    its other lines, ``racemap: ...`` on standard error, for the command. dbt's import of
    snowplow_tracker calls ``logging.basicConfig()``, which printed them as
    ``WARNING:racemap.openf1.client:...``; the records reach no other handler meanwhile."""
    logger = logging.getLogger("racemap")
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("racemap: %(message)s"))
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _command(args: argparse.Namespace) -> int:
    """The command's exit code; every failure one line on standard error."""
    try:
        code = COMMANDS[args.command](args)
        check_interrupted()  # a signal that came and was dropped: not a command that succeeded
        return code
    except UsageError as exc:
        print(f"racemap: {one_line(exc)}", file=sys.stderr)
        return verdict.EXIT_USAGE
    except RacemapError as exc:
        print(f"racemap: {one_line(exc)}", file=sys.stderr)
        return verdict.EXIT_FAILED
    except BrokenPipeError:  # the reader went away (`racemap export --output - | head`)
        _silence_stdout()
        return verdict.EXIT_SIGPIPE
    except OSError as exc:  # a folder or file it cannot use: what and where, one line
        where = f": {exc.filename}" if exc.filename else ""
        print(printable(f"racemap: {exc.strerror or one_line(exc)}{where}"), file=sys.stderr)
        return verdict.EXIT_FAILED
    except KeyboardInterrupt as exc:  # Interrupted names the stage of a run
        print(f"racemap: {str(exc) or 'interrupted'}", file=sys.stderr)
        return getattr(exc, "exit_code", verdict.EXIT_SIGINT)
    except Exception as exc:  # a bug or an unforeseen failure: still one line, no traceback
        if args.environment.racemap_debug:
            raise
        if (error := known_database_error(exc)) is not None:
            print(f"racemap: {error}", file=sys.stderr)
            return verdict.EXIT_FAILED
        print(
            f"racemap: unexpected {type(exc).__name__}: {one_line(exc)[:300]} "
            "(set RACEMAP_DEBUG=1 for the traceback, and report it)",
            file=sys.stderr,
        )
        return verdict.EXIT_FAILED


def _silence_stdout() -> None:
    """Standard output's reader is gone: what is still buffered goes nowhere, without a second
    error when Python flushes it at exit."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def console() -> None:
    """The ``racemap`` command (and ``python -m racemap.cli``): :func:`main`, then exit.

    A run leaves dbt, pandas and their import graphs in the process; the interpreter's last
    garbage collection of them took 1.4 s of a warm run's 23 s on 2 cores. Nothing needs
    collecting once the command is done, so they are frozen (``gc.freeze``) and simply let go:
    exit handlers still run, files are flushed and connections closed as before.
    """
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    console()
