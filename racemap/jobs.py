"""A call in a thread of its own, for what a run does beside its main line (the load's record
notebook, dbt docs): ``wait`` returns the call's value or raises its error; ``seconds`` is how
long the call took. As a context manager, leaving the block waits for the call (quietly: the
block's own error, if any, is the one raised). ``background=False`` makes it the plain call, run
at once (``racemap bench --parts devices`` measures what the thread saves)."""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor


class Job:
    def __init__(self, name: str, function, *args, background: bool = True, **kwargs) -> None:
        self.seconds = 0.0
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"racemap-{name}")
        if background:
            self._future = self._pool.submit(self._timed, function, args, kwargs)
        else:  # the plain call, here and now; its error is raised by ``wait`` all the same
            self._future = Future()
            try:
                self._future.set_result(self._timed(function, args, kwargs))
            except Exception as exc:  # noqa: BLE001 - kept for wait(), as a thread's would be
                self._future.set_exception(exc)

    def _timed(self, function, args, kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            self.seconds = round(time.perf_counter() - start, 3)

    def wait(self, quiet: bool = False):
        """The call's value; ``quiet``: wait only, and swallow its error (the run failed
        already, with an error of its own)."""
        try:
            return self._future.result()
        except Exception:
            if quiet:
                return None
            raise
        finally:
            self._pool.shutdown(wait=True)

    def __enter__(self) -> Job:
        return self

    def __exit__(self, *exc) -> None:
        self.wait(quiet=True)
