"""Great Expectations in a process of its own, started when a run starts.

Importing great_expectations takes seconds of CPU (as long as a one-model ``dbt build``). A run
starts this worker first: it imports GX on the other core while the run migrates and loads, and
runs both checkpoints (``validate.run_checkpoint``) when asked; the arguments carry everything a
checkpoint needs (the database, its GX context directory): no environment is shipped. A thread
would not do: the import holds Python's lock, so it would only take turns with the load.

One worker serves every run of a process (``shared``): a second run in the same process (a
notebook, the tests) does not import GX again. A run that ends with a checkpoint still running
(it failed, or was interrupted) stops the worker, so no run ever reads another's answer.

The worker is a ``multiprocessing`` child started with ``spawn`` (no fork of a process holding
database connections) and talks over one pipe. It exits when the run closes the pipe or the run
itself dies (end of file on the pipe); ``close`` stops it at once when the run ends early.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import gc
import multiprocessing
import signal
from multiprocessing.connection import Connection

from racemap.db import Database
from racemap.errors import RacemapError


def _serve(conn: Connection) -> None:
    """The worker: import GX, then run each checkpoint it is sent until the pipe closes."""
    from racemap.checks import validate

    validate.import_gx()
    while True:
        try:
            args, kwargs = conn.recv()
        except (EOFError, OSError):
            break  # the run closed the pipe: it is over
        try:
            reply = ("ok", validate.run_checkpoint(*args, **kwargs))
        except RacemapError as exc:
            reply = ("error", str(exc))
        except Exception as exc:  # noqa: BLE001 - sent back as one line, raised by the run
            reply = ("error", f"Great Expectations failed: {type(exc).__name__}: {exc}")
        try:
            conn.send(reply)
        except OSError:  # BrokenPipeError: the run ended (interrupted) while this one ran
            break
    # Great Expectations' import graph is frozen, not collected: the interpreter's last
    # collection of it took 1.3 s, which the run waits for (``close``). Clean-up still runs
    # (connections closed, files flushed).
    gc.freeze()


@contextlib.contextmanager
def _sigint_ignored():
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: signals are the main thread's
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


_SHARED: GxWorker | None = None


class GxWorker:
    """``GxWorker.shared().run_checkpoint(db, "raw", ...)`` (validate's arguments), or
    ``submit`` now and ``result()`` later."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child,), name="racemap-gx", daemon=True
        )
        # Started with Ctrl-C ignored (inherited through exec): a terminal's SIGINT reaches the
        # whole process group, and the run, not the worker, stops on it (no traceback of its own).
        with _sigint_ignored():
            self._process.start()
        child.close()
        self._waiting = False  # a checkpoint sent, its answer not read yet

    def submit(self, *args, **kwargs) -> Pending:
        """Start validate.run_checkpoint in the worker (its arguments say everything: the
        database, the GX context's directory); ``result()`` on what this returns waits for it.
        One checkpoint at a time."""
        # The embedded database's server handle stays here: the worker only connects.
        args = tuple(
            dataclasses.replace(a, _server=None) if isinstance(a, Database) else a for a in args
        )
        try:
            self._conn.send((args, kwargs))
        except (OSError, BrokenPipeError):
            self._stopped()
        self._waiting = True
        return Pending(self)

    def run_checkpoint(self, *args, **kwargs):
        """validate.run_checkpoint in the worker: its ValidationOutcome, or its RacemapError."""
        return self.submit(*args, **kwargs).result()

    def _receive(self):
        try:
            status, value = self._conn.recv()
        except (EOFError, OSError):
            self._stopped()
        self._waiting = False
        if status == "error":
            raise RacemapError(value)
        return value

    def _stopped(self):
        self._process.join(timeout=5)
        raise RacemapError(
            f"the Great Expectations worker stopped (exit code {self._process.exitcode}): run "
            "again, and `racemap validate` shows the checks' own error"
        ) from None

    def usable(self) -> bool:
        """Alive, and not owing an answer to an earlier run."""
        return self._process.is_alive() and not self._waiting and not self._conn.closed

    def release(self) -> None:
        """The end of a run: the worker stays for the next run, unless it owes an answer."""
        if self._waiting:
            self.close()

    def close(self) -> None:
        """Stop the worker: at once when it is still importing or the run failed."""
        self._conn.close()
        self._process.join(timeout=2)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join()

    @classmethod
    def shared(cls) -> GxWorker:
        """This process's worker, started now when there is none (or it cannot serve)."""
        global _SHARED
        if _SHARED is None or not _SHARED.usable():
            if _SHARED is not None:
                _SHARED.close()
            _SHARED = cls()
            # At exit the pipe closes and the worker returns on its own, finishing its clean-up
            # (multiprocessing would only terminate it).
            atexit.register(_SHARED.close)
        return _SHARED


class Pending:
    """A checkpoint running in the worker."""

    def __init__(self, worker: GxWorker) -> None:
        self._worker = worker

    def result(self):
        return self._worker._receive()


class InProcess:
    """The plain call with the worker's face: ``submit`` runs validate.run_checkpoint here and
    now (GX imported in this process, when first needed); ``racemap bench --parts devices``
    measures what the worker saves against it."""

    def submit(self, *args, **kwargs) -> Done:
        from racemap.checks import validate

        try:
            return Done(validate.run_checkpoint(*args, **kwargs))
        except RacemapError as exc:
            return Done(error=exc)

    def release(self) -> None:
        return None


@dataclasses.dataclass
class Done:
    value: object = None
    error: Exception | None = None

    def result(self):
        if self.error is not None:
            raise self.error
        return self.value
