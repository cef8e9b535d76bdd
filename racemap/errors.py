"""The exceptions the command line turns into a single clear line, and the signals (Ctrl-C,
SIGTERM) that raise one of them.

Signals: a signal's Python handler raises in whatever the main thread runs at that moment. When
that is a ``__del__``, a weakref callback or a generator the garbage collector closes (dbt's
build makes plenty), Python reports the exception as unraisable ("Exception ignored in ...") and
carries on: a run given Ctrl-C while dbt built once finished and exited 0. So the signal is also
remembered: :func:`check_interrupted` raises it again at the next stage boundary
(``pipeline.Stages``), the command line turns a command that returned anyway into its
interrupted exit code, and the unraisable report of it is not printed (the command's own line
says it). :func:`signals_handled` installs this around one command, in the main thread, and puts
back what was there before (tests call ``cli.main`` many times in one process).
"""

import contextlib
import signal
import sys
from collections.abc import Iterable
from urllib.parse import quote

from racemap.verdict import signal_exit_code


class RacemapError(Exception):
    """An expected failure: bad input, unreachable database, failed validation.

    The CLI prints ``str(error)`` on one line and exits non-zero, without a traceback; a
    notebook (JupyterLab, or the copy papermill writes) shows that line too.
    """

    def _render_traceback_(self) -> list[str]:
        """What IPython shows in place of the traceback: the one line, and the cells after it
        do not run. The line names the notebook's parameters where the command line's names
        its options (an analyst sets ``offline = True``, not ``--offline``)."""
        return [for_notebook(str(self))]


# The command line's options in racemap's lines, and what a notebook sets instead (its
# parameters of the same names, and OPENF1_URL for --openf1-url), longest first.
_NOTEBOOK_WORDS = (
    ("run with --offline (bundled snapshot)", "set offline = True"),
    ("--openf1-url / OPENF1_URL", "OPENF1_URL"),
    ("--openf1-url URL", "OPENF1_URL"),
    ("--seasons ", "seasons "),
)


def for_notebook(line: str) -> str:
    """``line`` as a notebook shows it: :data:`_NOTEBOOK_WORDS` put in."""
    for option, parameter in _NOTEBOOK_WORDS:
        line = line.replace(option, parameter)
    return line


class UsageError(RacemapError):
    """The command was given something it cannot use (an unknown var, a value out of range):
    exit code 2, like argparse's own usage errors."""


# C0 and C1 controls, DEL, and the bidirectional marks, overrides and isolates: what can move a
# terminal's cursor, colour it, end a line, or reorder what a line shows.
_ESCAPES = {
    code: repr(chr(code))[1:-1]
    for code in (
        *range(0x20),
        *range(0x7F, 0xA0),
        0x200E,
        0x200F,
        *range(0x202A, 0x202F),
        *range(0x2066, 0x206A),
    )
}


def printable(text) -> str:
    """``text`` for a line of output (it may hold the application's race names and ids, or
    OpenF1's strings): each control character written as its escape (``\\n``, ``\\x1b``,
    ``\\u202e``), so the text stays on its line and cannot drive the terminal."""
    return str(text).translate(_ESCAPES)


def one_line(text) -> str:
    """A message on one line: its runs of white space (line breaks too) one space, any other
    control character escaped (:func:`printable`)."""
    return printable(" ".join(str(text).split()))


def blank_secrets(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every secret replaced by ``***``, in each form a secret takes in a line:
    as it is, or URL-encoded (with or without ``/``, a space as ``%20`` or ``+``). The longest
    first, so that a secret inside another (an account name in its password) leaves nothing of
    the other. The one place that knows the forms: an OpenF1 answer's detail, the line of a
    refused connection and the webhook's strings all go through it."""
    forms = set()
    for secret in secrets:
        if secret:
            encoded = quote(secret, safe="")
            forms |= {secret, encoded, encoded.replace("%20", "+"), quote(secret)}
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, "***")
    return text


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (a database's or a server's runs on for lines of
    context), else the error's type name."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def missing_relation(exc: BaseException) -> RacemapError | None:
    """PostgreSQL's undefined table or column (psycopg2's, or wrapped by SQLAlchemy in Great
    Expectations) as one line: a table or column dropped or renamed since the last build, the
    application's (read live through racemap_staging.app_race_keys()) or racemap's own. None for
    any other error."""
    cause = getattr(exc, "orig", None) or exc
    if getattr(cause, "pgcode", None) not in ("42P01", "42703"):  # undefined table, column
        return None
    return not_as_built(first_line(cause)[:200])


def not_as_built(cause: str) -> RacemapError:
    """The one line for a relation of racemap's last build that is not there (``cause``:
    PostgreSQL's words, or racemap's own), as every command and notebook says it."""
    return RacemapError(
        f"the database is not as racemap's last build left it ({cause}): run racemap run"
    )


def missing_privilege(exc: BaseException) -> RacemapError | None:
    """PostgreSQL's insufficient privilege (psycopg2's, or wrapped by SQLAlchemy) as one line
    pointing at the grants, where no earlier check named the grant itself (``racemap status``
    reading a races table whose schema the role may no longer use, say). None for any other
    error."""
    cause = getattr(exc, "orig", None) or exc
    if getattr(cause, "pgcode", None) != "42501":  # insufficient_privilege
        return None
    return RacemapError(
        f"{first_line(cause)[:200]}: this role lacks a grant: give it the grants of a routine "
        'run (README, "The grants of a routine run"; a races table outside public needs '
        "USAGE on its schema), or run racemap as a role that has them"
    )


def known_database_error(exc: BaseException) -> RacemapError | None:
    """A relation or grant gone under a command (:func:`missing_relation`,
    :func:`missing_privilege`) as its one line; None for any other error."""
    return missing_relation(exc) or missing_privilege(exc)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM: the command stops with one line (``str``, e.g.
    ``interrupted during dbt_build``) and exit code 128 + the signal's number (130, 143)."""

    def __init__(self, message: str = "interrupted", signum: int = signal.SIGINT):
        super().__init__(message)
        self.signum = int(signum)

    @property
    def exit_code(self) -> int:
        return signal_exit_code(self.signum)


SIGNALS = (signal.SIGINT, signal.SIGTERM)

_received: int | None = None  # the signal that came during the current command, if any


def _raise(signum: int, _frame) -> None:
    global _received
    _received = signum
    raise Interrupted("interrupted", signum)


def _quiet_when_handled(previous):
    def hook(unraisable) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt) and _received is not None:
            return  # remembered: check_interrupted() raises it where it can be handled
        previous(unraisable)

    return hook


def check_interrupted() -> None:
    """Raise Interrupted if a signal came during this command: one Python dropped stops the
    command here, at a boundary where it can be handled."""
    if _received is not None:
        raise Interrupted("interrupted", _received)


@contextlib.contextmanager
def signals_handled():
    """SIGINT and SIGTERM raise :class:`Interrupted` (exit 130 / 143) for the block, and are
    remembered for :func:`check_interrupted`. Outside the main thread signals are not this thread's:
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
