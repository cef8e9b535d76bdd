"""The ``racemap`` command line: run, lookup, restore, validate, bench, export."""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

from .errors import RacemapError
from .paths import DEFAULT_REPORTS_DIR

for _name, _value in (
    ("DBT_SEND_ANONYMOUS_USAGE_STATS", "false"),
    ("DO_NOT_TRACK", "1"),
    ("GX_ANALYTICS_ENABLED", "false"),
):
    os.environ.setdefault(_name, _value)


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="racemap", description=__doc__)
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
        "--openf1-url", help="OpenF1 base URL (default: $OPENF1_URL or the public API)"
    )
    run.add_argument("--refresh", action="store_true", help="fetch settled seasons again")
    run.add_argument("--dry-run", action="store_true", help="everything but the apply")
    run.add_argument(
        "--allow-changes",
        action="store_true",
        help="replace keys a race already holds when the mapping differs",
    )
    run.add_argument("--reports-dir", type=Path, default=DEFAULT_REPORTS_DIR)

    lookup = sub.add_parser("lookup", help="a race's keys, or a meeting's race")
    _common(lookup)
    which = lookup.add_mutually_exclusive_group(required=True)
    which.add_argument("--race-id")
    which.add_argument("--meeting-key", type=int)
    add_session_argument(lookup)

    restore = sub.add_parser("restore", help="put back the mapping as before the last apply")
    _common(restore)

    validate = sub.add_parser("validate", help="run the Great Expectations checkpoints alone")
    _common(validate)
    validate.add_argument("--reports-dir", type=Path, default=DEFAULT_REPORTS_DIR)

    add_export_parser(sub)

    bench = sub.add_parser("bench", help="the benchmarks; writes reports/bench.json")
    _common(bench)
    from .bench import add_arguments

    add_arguments(bench)
    return parser


def _db(args):
    from .db import resolve_database

    db = resolve_database(args.database_url)
    db.export_env()
    return db


def cmd_run(args) -> int:
    from .pipeline import RunOptions, format_summary, run
    from .settings import parse_vars

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
        )
    )
    print(format_summary(result.summary))
    print(f"reports in {args.reports_dir}")
    if result.failures:
        print("validation failed: " + "; ".join(result.failures), file=sys.stderr)
    return result.exit_code


def cmd_lookup(args) -> int:
    from .lookup import race_for_meeting, race_keys
    from .settings import RacesTable, parse_vars

    if args.session is not None:
        return lookup_session(args)
    db = _db(args)
    races = RacesTable.from_vars(parse_vars(args.var))
    with db.transaction() as conn:
        if args.race_id is not None:
            keys = race_keys(conn, args.race_id, races)
            print(
                f"race {keys.race_id}: meeting_key {keys.meeting_key}, "
                f"session_key {keys.session_key}"
            )
        else:
            race_id = race_for_meeting(conn, args.meeting_key, races)
            print(f"meeting {args.meeting_key}: race_id {race_id}")
    return 0


def add_session_argument(lookup: argparse.ArgumentParser) -> None:
    from .lookup import SESSION_KINDS

    lookup.add_argument(
        "--session",
        choices=SESSION_KINDS,
        metavar="KIND",
        help=f"with --race-id: which session of the weekend ({', '.join(SESSION_KINDS)}; "
        "default race)",
    )


def lookup_session(args) -> int:
    """``racemap lookup --race-id ID --session KIND``: one session of the race's weekend."""
    from .lookup import race_session_key
    from .settings import RacesTable, parse_vars

    if args.race_id is None:
        print("racemap lookup: --session goes with --race-id", file=sys.stderr)
        return 2
    db = _db(args)
    races = RacesTable.from_vars(parse_vars(args.var))
    with db.transaction() as conn:
        found = race_session_key(conn, args.race_id, args.session, races)
    print(
        f"race {found.race_id}: meeting_key {found.meeting_key}, "
        f"session_key {found.session_key} ({found.kind})"
    )
    return 0


def cmd_restore(args) -> int:
    from .apply import restore_last_apply
    from .settings import RacesTable, parse_vars

    db = _db(args)
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]
    result = restore_last_apply(db, run_id, RacesTable.from_vars(parse_vars(args.var)))
    print(f"restored {result.restored} races to their keys before run {result.restores_run_id}")
    if result.skipped:
        print(f"left alone (changed since): {', '.join(result.skipped)}")
    return 0


def cmd_validate(args) -> int:
    from .settings import RacesTable, parse_vars
    from .validate import coverage_threshold, run_checkpoint

    variables = parse_vars(args.var)
    threshold = coverage_threshold(variables)
    db = _db(args)
    races = RacesTable.from_vars(variables)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    failed = []
    for name in ("raw", "mapping"):
        outcome = run_checkpoint(
            db, name, races, args.reports_dir, f"validate-{stamp}-{name}", threshold=threshold
        )
        print(
            f"{name}: {'passed' if outcome.success else 'FAILED'} "
            f"({outcome.evaluated} expectations)"
        )
        failed += outcome.failed
    print(f"Data Docs: {args.reports_dir / 'validation' / 'index.html'}")
    if failed:
        print("validation failed: " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0


def add_export_parser(sub) -> None:
    export = sub.add_parser("export", help="the crosswalk, one row per race (csv, json, parquet)")
    _common(export)
    export.add_argument("--format", required=True, choices=("csv", "json", "parquet"))
    export.add_argument("--output", required=True, type=Path, metavar="PATH")


def cmd_export(args) -> int:
    from .export import export_crosswalk
    from .settings import parse_vars

    variables = parse_vars(args.var)
    db = _db(args)
    with db.transaction() as conn:
        count = export_crosswalk(conn, args.format, args.output, variables)
    print(f"exported {count} races to {args.output} ({args.format})")
    return 0


def cmd_bench(args) -> int:
    from .bench import main as bench_main

    return bench_main(args)


COMMANDS = {
    "run": cmd_run,
    "lookup": cmd_lookup,
    "restore": cmd_restore,
    "validate": cmd_validate,
    "bench": cmd_bench,
    "export": cmd_export,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except RacemapError as exc:
        print(f"racemap: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("racemap: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
