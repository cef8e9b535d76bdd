"""The verdict of every command and its exit code, decided here and nowhere else.

``ok`` (exit 0): everything promised is in place and no race needs a person. ``attention``
(exit 3): at least one race needs a person, each named with what to do. ``failed`` (exit 1):
something could not be done, said in one line. A bad option or ``--var`` is a usage error (exit
2, nothing runs); a command interrupted by SIGINT / SIGTERM exits 130 / 143 (128 + the signal).

The run (``racemap.pipeline``), ``racemap validate``, ``racemap status``, the mapping report and
the webhook all call :func:`decide` with what they found; none of them holds a rule of its own.
"""

from __future__ import annotations

import signal
from collections.abc import Iterable

OK = "ok"
ATTENTION = "attention"
FAILED = "failed"
VERDICTS = (OK, ATTENTION, FAILED)

EXIT_CODES = {OK: 0, ATTENTION: 3, FAILED: 1}
EXIT_OK = EXIT_CODES[OK]
EXIT_ATTENTION = EXIT_CODES[ATTENTION]
EXIT_FAILED = EXIT_CODES[FAILED]
EXIT_USAGE = 2


def signal_exit_code(signum: int) -> int:
    """A command stopped by a signal: the shell's convention, 128 + the signal's number."""
    return 128 + int(signum)


EXIT_SIGINT = signal_exit_code(signal.SIGINT)  # 130
EXIT_SIGTERM = signal_exit_code(signal.SIGTERM)  # 143
# Standard output's reader went away (``racemap export --output - | head``): silent, as a
# command killed by SIGPIPE would be.
EXIT_SIGPIPE = signal_exit_code(signal.SIGPIPE)  # 141
INTERRUPTED_EXIT_CODES = {"SIGINT": EXIT_SIGINT, "SIGTERM": EXIT_SIGTERM}


def decide(failures: Iterable = (), attention: Iterable = ()) -> str:
    """``failed`` when anything failed, else ``attention`` when anything needs a person (a race,
    a failed expectation that names races, raw data gone stale in season, mapped races that do
    not hold their keys), else ``ok``."""
    if any(True for _ in failures):
        return FAILED
    if any(True for _ in attention):
        return ATTENTION
    return OK


def exit_code(verdict: str) -> int:
    """The exit code of a verdict word."""
    return EXIT_CODES[verdict]


def worst_exit_code(*codes: int) -> int:
    """The worse of verdicts given as exit codes (``racemap run --race-data``: the run's and the
    sync's): failed over attention over ok."""
    order = [EXIT_CODES[v] for v in VERDICTS]
    return max(codes, key=order.index)


def calls_for_a_person(verdict: str | None) -> bool:
    """A verdict someone should be told of (the webhook), whatever changed."""
    return verdict in (ATTENTION, FAILED)


def status_verdict(
    last_run_verdict: str | None,
    attention_rows: Iterable,
    stale_endpoints: Iterable,
    unapplied: int,
    last_sync_verdict: str | None = None,
) -> str:
    """``racemap status``: failed when no run is recorded, the last one failed or the last
    ``racemap sync`` failed (the race data is not what a sync promises until one finishes);
    attention when a race needs a person (a race data check of the last sync included), the raw
    data is stale in season, or races are mapped but hold no keys (their mapping is not applied:
    after ``racemap restore`` or a dry run, the keys are not in place, which DESIGN.md counts as
    holding keys that are not the race's mapping)."""
    failures = [last_run_verdict or "no run"] if last_run_verdict in (None, FAILED) else []
    if last_sync_verdict == FAILED:
        failures.append("last sync")
    attention = [*attention_rows, *stale_endpoints] + (["unapplied"] if unapplied else [])
    return decide(failures, attention)
