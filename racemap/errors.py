"""The one exception type the command line turns into a single clear line."""


class RacemapError(Exception):
    """An expected failure: bad input, unreachable database, failed validation.

    The CLI prints ``str(error)`` on one line and exits non-zero, without a traceback.
    """


class UsageError(RacemapError):
    """The command was given something it cannot use (an unknown var, a value out of range):
    exit code 2, like argparse's own usage errors."""
