"""The one exception type the command line turns into a single clear line."""


class RacemapError(Exception):
    """An expected failure: bad input, unreachable database, failed validation.

    The CLI prints ``str(error)`` on one line and exits non-zero, without a traceback.
    """
