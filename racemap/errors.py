"""The one exception type the command line turns into a single clear line."""

import signal

from racemap.verdict import signal_exit_code


class RacemapError(Exception):
    """An expected failure: bad input, unreachable database, failed validation.

    The CLI prints ``str(error)`` on one line and exits non-zero, without a traceback.
    """


class UsageError(RacemapError):
    """The command was given something it cannot use (an unknown var, a value out of range):
    exit code 2, like argparse's own usage errors."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM: the command stops with one line (``str``, e.g.
    ``interrupted during dbt_build``) and exit code 128 + the signal's number (130, 143)."""

    def __init__(self, message: str = "interrupted", signum: int = signal.SIGINT):
        super().__init__(message)
        self.signum = int(signum)

    @property
    def exit_code(self) -> int:
        return signal_exit_code(self.signum)
