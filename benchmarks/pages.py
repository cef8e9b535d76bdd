"""Race pages: a sync's pages in one shared kernel (as ``racemap sync`` renders them) against a
kernel of their own each (the plain call), same rounds.

On a scratch database holding the demo races, ``racemap run --offline --seasons 2024
--race-data`` (not counted) maps 2024, syncs the bundled recorded sessions and renders their
pages; then ``rounds`` rounds render those races' pages once each way, the order flipping every
round (a shared machine's drift hits both alike). Reported: every round, the medians, what one
kernel saved in each round and the median of those (for the pages and per page), and whether
the shared kernel earns its keep (at least ``KEEP_SECONDS`` for the pages of the sync).
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
from pathlib import Path

from racemap.db import Database
from racemap.errors import RacemapError

from .end_to_end import DEFAULT_ROUNDS, _median, demo_database, paired_saving
from .scratch import Scratch

KEEP_SECONDS = 1.0
SHARED = "one kernel"
PLAIN = "a kernel each"
SEASON = "2024"
AS_OF = "2026-11-25T00:00:00Z"  # the snapshot's seasons are over: every 2024 race has run


def bench_pages(scratch: Scratch, rounds: int = DEFAULT_ROUNDS, log=print) -> dict:
    """The first run and sync on a scratch demo database, then :func:`measure_pages`."""
    from racemap import cli

    db = demo_database(scratch, "pages")
    with tempfile.TemporaryDirectory(prefix="racemap-bench-pages-") as tmp:
        reports = Path(tmp) / "reports"
        log(f"pages: racemap run --offline --seasons {SEASON} --race-data (not counted) ...")
        args = ["run", "--database-url", db.url, "--offline", "--seasons", SEASON]
        args += ["--var", f"as_of={AS_OF}", "--reports-dir", str(reports), "--race-data"]
        with contextlib.redirect_stdout(sys.stderr):  # the run's lines are the bench's log
            code = cli.main(args)
        if code not in (0, 3):
            raise RacemapError("racemap run --race-data failed in the benchmark")
        races = sorted(page.stem for page in (reports / "races").glob("*.html"))
    return {"database": f"a scratch database on {scratch.server.display}"} | measure_pages(
        db, races, rounds, log
    )


def measure_pages(db: Database, race_ids: list[str], rounds: int, log=print) -> dict:
    """The pages of ``race_ids`` (their race data synced in ``db``) rendered ``rounds`` times
    with one kernel for them all and with a kernel each, alternating which goes first."""
    from racemap import runtime
    from racemap.race_data import Page, render_pages
    from racemap.settings import load_environment

    if rounds < 1:
        raise RacemapError(f"--rounds {rounds}: at least one round")
    if not race_ids:
        raise RacemapError("no race page to render: the sync rendered none")
    seconds: dict[str, list[float]] = {SHARED: [], PLAIN: []}
    with (
        runtime.database_state(db, load_environment().racemap_state_dir),
        tempfile.TemporaryDirectory(prefix="racemap-bench-pages-") as tmp,
    ):
        for n in range(rounds):
            for name in (SHARED, PLAIN) if n % 2 == 0 else (PLAIN, SHARED):
                log(f"pages: round {n + 1} of {rounds}: {len(race_ids)} pages, {name} ...")
                out = Path(tmp) / f"{n}-{name.replace(' ', '_')}"
                start = time.perf_counter()
                _pages, failures = render_pages(
                    [Page(r) for r in race_ids],
                    out,
                    log=lambda _line: None,
                    shared_kernel=name == SHARED,
                )
                seconds[name].append(round(time.perf_counter() - start, 3))
                if failures:
                    raise RacemapError(f"pages: {failures[0]}")
    shared, plain = _median(seconds[SHARED]), _median(seconds[PLAIN])
    saving, by_round = paired_saving(seconds[SHARED], seconds[PLAIN])
    return {
        "races": list(race_ids),
        "rounds": rounds,
        "keep_when_saving_at_least_seconds": KEEP_SECONDS,
        "seconds": seconds,
        "median_seconds": {SHARED: shared, PLAIN: plain},
        "saving_by_round": by_round,
        "saving_seconds": saving,
        "saving_per_page_after_the_first": round(saving / max(len(race_ids) - 1, 1), 3),
        "keep": saving >= KEEP_SECONDS,
    }


def pages_lines(report: dict) -> list[str]:
    from .report import _table

    rows = [
        [
            name,
            report["median_seconds"][name],
            ", ".join(f"{v:.2f}" for v in report["seconds"][name]),
        ]
        for name in (SHARED, PLAIN)
    ]
    return [
        "",
        f"PAGES — {len(report['races'])} race pages of a sync ({', '.join(report['races'])}), "
        f"{report['rounds']} rounds, alternating (seconds)",
        _table(["pages rendered with", "median", "rounds"], rows),
        f"one kernel saves {report['saving_seconds']:+.2f} s "
        f"({report['saving_per_page_after_the_first']:.2f} s a page after the first; the median "
        f"of the rounds' {', '.join(f'{v:+.2f}' for v in report['saving_by_round'])}): "
        + ("kept" if report["keep"] else "drop it")
        + f" (kept when it saves at least {report['keep_when_saving_at_least_seconds']:g} s)",
    ]
