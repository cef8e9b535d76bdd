"""``racemap bench``: the options, the run of every part, bench.json."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from racemap.cli import seconds_option
from racemap.errors import UsageError
from racemap.paths import DEFAULT_REPORTS_DIR
from racemap.settings import load_environment, parse_vars
from racemap.verdict import EXIT_FAILED, EXIT_OK

from .devices import bench_devices
from .end_to_end import DEFAULT_ROUNDS, WarmDatabase, bench_end_to_end
from .imports import bench_imports
from .memory import DEFAULT_SIZES, bench_memory, parse_sizes, sizes_text
from .pages import bench_pages
from .race_data import bench_race_data
from .report import PARTS, format_report
from .request_counts import DEFAULT_REFERENCE_RACES, bench_requests
from .scales import DEFAULT_MAX_BUILD_SECONDS, DEFAULT_SCALES, bench_scales
from .scratch import bench_scratch, scratch_server, scratch_tool_dirs


def parse_scales(text: str | None) -> list[int]:
    if not text:
        return list(DEFAULT_SCALES)
    try:
        scales = sorted({int(part) for part in str(text).split(",") if part.strip()})
    except ValueError:
        raise UsageError(f"--scales {text!r}: give integers, e.g. 1,10,100") from None
    if not scales or min(scales) < 1:
        raise UsageError(f"--scales {text!r}: scales are copies of the real data, at least 1")
    return scales


def parse_parts(text: str | None) -> tuple[str, ...]:
    if not text:
        return PARTS
    parts = tuple(p.strip() for p in str(text).split(",") if p.strip())
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        raise UsageError(f"--parts {text!r}: choose among {','.join(PARTS)}")
    return parts


def _at_least_one(text: str) -> int:
    """--rounds, --reference-races: a whole number from 1 (0 rounds measured nothing, and ran)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"give a whole number from 1, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"give a whole number from 1, not {text}")
    return value


def run(
    database_url: str | None = None,
    scales=DEFAULT_SCALES,
    reference_races: int | None = DEFAULT_REFERENCE_RACES,
    reports_dir: Path = DEFAULT_REPORTS_DIR,
    variables: dict | None = None,
    parts=PARTS,
    keep: bool = False,
    max_build_seconds: float | None = DEFAULT_MAX_BUILD_SECONDS,
    rounds: int = DEFAULT_ROUNDS,
    memory_sizes=DEFAULT_SIZES,
    log=print,
) -> dict:
    """Every measurement; returns the report (also written to ``<reports_dir>/bench.json``).

    Everything happens in scratch databases on the server ``database_url`` (or $DATABASE_URL)
    names, else on a temporary embedded PostgreSQL: never in the user's own database.
    """
    variables = dict(variables or {})
    report: dict = {
        "date": datetime.now(UTC).date().isoformat(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "variables": variables,
    }
    database_url = database_url or load_environment().database_url
    with (
        scratch_tool_dirs(),
        scratch_server(database_url) as server,
        tempfile.TemporaryDirectory(prefix="racemap-bench-warm-") as warm_dir,
    ):
        scratch = bench_scratch(server, keep=keep)
        # end_to_end and devices share one filled demo database (one first run, not two).
        warm = WarmDatabase(reports=Path(warm_dir) / "reports")
        report["server"] = server.display
        report["scratch_databases"] = f"{scratch.prefix}_*" + (" (kept)" if keep else " (dropped)")
        if orphans := scratch.drop_orphans():  # of benches and test sessions killed here
            log(f"dropped what killed benches or test sessions left: {', '.join(orphans)}")
        try:
            report["machine"]["postgres"] = scratch.server_version()
            measurements = {
                "requests": lambda: bench_requests(
                    scratch, reference_races=reference_races, variables=variables, log=log
                ),
                "race_data": lambda: bench_race_data(scratch, log=log),
                "scales": lambda: bench_scales(
                    scratch, scales, variables, max_build_seconds=max_build_seconds, log=log
                ),
                "end_to_end": lambda: bench_end_to_end(
                    scratch, variables, rounds=rounds, log=log, warm=warm
                ),
                "devices": lambda: bench_devices(
                    scratch, variables, rounds=rounds, log=log, warm=warm
                ),
                "pages": lambda: bench_pages(scratch, rounds=rounds, log=log),
                "memory": lambda: bench_memory(scratch, memory_sizes, log=log),
                "imports": bench_imports,
            }
            for name, measure in measurements.items():
                if name not in parts:
                    continue
                try:
                    report[name] = measure()
                except Exception as exc:  # one part failing still reports the others
                    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                    log(f"{name}: failed: {first}")
                    report[name] = {"error": first}
        finally:
            scratch.drop_all()
    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    (reports_dir / "bench.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    return report


def main(args) -> int:
    """``racemap bench`` (args from the CLI: database_url, var and the options below)."""
    env = getattr(args, "environment", None) or load_environment()  # the CLI's, else read here
    reference_races = getattr(args, "reference_races", None)
    if reference_races is None:
        reference_races = env.racemap_bench_reference_races
    parts = parse_parts(getattr(args, "parts", None))
    reports_dir = Path(getattr(args, "reports_dir", None) or DEFAULT_REPORTS_DIR)
    report = run(
        database_url=getattr(args, "database_url", None),
        scales=parse_scales(getattr(args, "scales", None)),
        reference_races=reference_races,
        reports_dir=reports_dir,
        variables=parse_vars(getattr(args, "var", None)),
        parts=parts,
        keep=bool(getattr(args, "keep", False)),
        max_build_seconds=getattr(args, "max_build_seconds", DEFAULT_MAX_BUILD_SECONDS),
        rounds=getattr(args, "rounds", DEFAULT_ROUNDS),
        memory_sizes=parse_sizes(getattr(args, "memory_records", None)),
        log=lambda message: print(message, file=sys.stderr, flush=True),
    )
    print(format_report(report))
    failed = [p for p in parts if isinstance(report.get(p), dict) and "error" in report[p]]
    print(f"\nwritten to {reports_dir}/bench.json")
    checks = failures(report)
    for line in checks:
        print(f"bench: FAILED {line}")
    return EXIT_FAILED if failed or checks else EXIT_OK


def failures(report: dict) -> list[str]:
    """The checks a report fails, one line each naming the part (and the scale and the node): a
    scale that did not finish, a node growing faster than the data, a nested loop that
    rescans; memory over its target, or growing faster than the answer."""
    return [
        f"{part} {line}"
        for part in ("scales", "memory")
        if isinstance(report.get(part), dict)
        for line in report[part].get("failures", [])
    ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The bench's own options (``racemap bench`` adds --database-url and --var itself)."""
    parser.add_argument("--reports-dir", type=Path, default=DEFAULT_REPORTS_DIR)
    parser.add_argument(
        "--scales",
        default=",".join(map(str, DEFAULT_SCALES)),
        help="synthetic scales to build (default %(default)s)",
    )
    parser.add_argument(
        "--reference-races",
        type=_at_least_one,
        help="limit the per-race reference to the first N races and extrapolate (labelled)",
    )
    parser.add_argument("--parts", help=f"{','.join(PARTS)} (default: all)")
    parser.add_argument(
        "--rounds",
        type=_at_least_one,
        default=DEFAULT_ROUNDS,
        help="end_to_end, devices, pages: rounds of each side, alternating (default %(default)s)",
    )
    parser.add_argument(
        "--memory-records",
        default=sizes_text(DEFAULT_SIZES),
        help="memory: the car_data answers to store, in records (all: a whole session; "
        "default %(default)s; an empty answer is the baseline)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch databases")
    parser.add_argument(
        "--max-build-seconds",
        type=seconds_option,
        default=DEFAULT_MAX_BUILD_SECONDS,
        help="cancel a scale's dbt build after this long and report it unfinished (0: never)",
    )


def parser() -> argparse.ArgumentParser:
    """``python -m benchmarks``: the same options as ``racemap bench``."""
    out = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    out.add_argument("--database-url")
    out.add_argument("--var", action="append", default=[])
    add_arguments(out)
    return out
