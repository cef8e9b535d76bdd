"""Ctrl-C (SIGINT) and SIGTERM stop a command, even where Python drops the KeyboardInterrupt.

A signal's Python handler raises in whatever the main thread runs at that moment. When that is
a ``__del__``, a weakref callback or a generator the garbage collector closes (dbt's build makes
plenty), Python reports the exception as unraisable ("Exception ignored in ...") and carries on:
a run given Ctrl-C while dbt built once finished and exited 0. So the signal is also remembered:
:func:`check` raises it again at the next stage boundary (``pipeline.Stages``), the command line
turns a command that returned anyway into its interrupted exit code, and the unraisable report
of it is not printed (the command's own line says it).

:func:`handled` installs this around one command, in the main thread, and puts back what was
there before (tests call ``cli.main`` many times in one process).
"""

from __future__ import annotations

import contextlib
import signal
import sys

from racemap.errors import Interrupted

SIGNALS = (signal.SIGINT, signal.SIGTERM)

_received: int | None = None  # the signal that came during the current command, if any


def _raise(signum: int, _frame) -> None:
    global _received
    _received = signum
    raise Interrupted("interrupted", signum)


def _quiet_when_handled(previous):
    def hook(unraisable) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt) and _received is not None:
            return  # remembered: check() raises it where it can be handled
        previous(unraisable)

    return hook


def received() -> int | None:
    """The signal that came during the current command (SIGINT, SIGTERM), or None."""
    return _received


def check() -> None:
    """Raise Interrupted if a signal came that nothing has raised out yet."""
    if _received is not None:
        raise Interrupted("interrupted", _received)


@contextlib.contextmanager
def handled():
    """SIGINT and SIGTERM raise :class:`Interrupted` (exit 130 / 143) for the block, and are
    remembered for :func:`check`. Outside the main thread signals are not this thread's:
    nothing is installed."""
    global _received
    try:
        previous = {s: signal.signal(s, _raise) for s in SIGNALS}
    except ValueError:  # not the main thread
        yield
        return
    _received = None
    previous_hook = sys.unraisablehook
    sys.unraisablehook = _quiet_when_handled(previous_hook)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        sys.unraisablehook = previous_hook
        _received = None
