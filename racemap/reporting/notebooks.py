"""Running the project's notebooks with papermill; executed copies go to reports/notebooks/."""

from __future__ import annotations

import tempfile
from pathlib import Path

from racemap.errors import RacemapError
from racemap.jobs import Job
from racemap.paths import NOTEBOOKS_DIR, PROJECT_DIR


def _ipc_config(sockets_dir: str):
    """The kernel talks over Unix sockets in a private directory, not TCP on localhost
    (ipykernel warns about unencrypted TCP on every start)."""
    from traitlets.config import Config

    return Config({"KernelManager": {"transport": "ipc", "ip": f"{sockets_dir}/kernel"}})


def execute(
    name: str,
    reports_dir: Path,
    parameters: dict | None = None,
    timeout: int = 900,
    kernel: WarmKernel | None = None,
) -> Path:
    """Execute ``notebooks/<name>.ipynb`` into ``<reports_dir>/notebooks/<name>.ipynb``.

    Credentials never travel as parameters (papermill writes parameters into the notebook):
    the kernel inherits DATABASE_URL and the PG* variables from this process's environment.
    ``kernel``: a kernel started earlier (``WarmKernel``), used and then shut down.
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    source = NOTEBOOKS_DIR / f"{name}.ipynb"
    out_dir = Path(reports_dir) / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / f"{name}.ipynb"
    sockets = tempfile.TemporaryDirectory(prefix="racemap-kernel-")
    extra = {"km": kernel.manager()} if kernel is not None else {}
    try:
        pm.execute_notebook(
            str(source),
            str(output),
            parameters=parameters or {},
            cwd=str(PROJECT_DIR),
            kernel_name="python3",
            progress_bar=False,
            execution_timeout=timeout,
            log_output=False,
            config=_ipc_config(sockets.name),
            **extra,
        )
    except PapermillExecutionError as exc:
        # The kernel's exception: for a RacemapError that is already the one clear line.
        raise RacemapError(
            f"notebook {name} failed ({exc.ename}): {exc.evalue} — see {output}"
        ) from None
    finally:
        if kernel is not None:
            kernel.shutdown()
        sockets.cleanup()
    return output


class WarmKernel:
    """A notebook's kernel started ahead, while the run waits on something else: started,
    ready, with ``warm_code`` run silently (imports: no output, no execution count). ``execute``
    then runs the notebook on it instead of starting a kernel of its own, and shuts it down.
    A kernel that could not start is no error here: ``manager`` is then None and papermill
    starts one as usual (and says what went wrong).
    """

    def __init__(self, warm_code: str = "") -> None:
        self._sockets = tempfile.TemporaryDirectory(prefix="racemap-kernel-")
        self._km = None
        self._clients = []
        self._job = Job("kernel", self._start, warm_code)

    def _start(self, warm_code: str):
        from jupyter_client.manager import AsyncKernelManager
        from jupyter_core.utils import run_sync

        km = AsyncKernelManager(kernel_name="python3", config=_ipc_config(self._sockets.name))
        self._km = km
        km.client = self._client
        run_sync(km.start_kernel)(cwd=str(PROJECT_DIR))
        client = km.client()
        client.start_channels()
        try:
            run_sync(client.wait_for_ready)(timeout=120)
            if warm_code:
                run_sync(client.execute_interactive)(
                    warm_code, silent=True, store_history=False, timeout=120
                )
        finally:
            client.stop_channels()
        return km

    def _client(self, **kwargs):
        """The kernel manager's ``client``, remembered: nbclient does not stop the client it makes
        on a kernel it does not own, and a client collected with its channels running says
        "Could not destroy zmq context" as the run exits. ``shutdown`` stops them."""
        client = type(self._km).client(self._km, **kwargs)
        self._clients.append(client)
        return client

    def manager(self):
        """The started kernel's manager, or None when it could not start."""
        try:
            return self._job.wait()
        except Exception:  # noqa: BLE001 - papermill starts a kernel of its own instead
            self.shutdown()
            return None

    def shutdown(self) -> None:
        """Stop the kernel (after its notebook ran, or when the run ends early)."""
        from jupyter_core.utils import run_sync

        self._job.wait(quiet=True)
        for client in self._clients:
            client.stop_channels()
        self._clients = []
        km, self._km = self._km, None
        if km is not None:
            try:
                if run_sync(km.is_alive)():
                    run_sync(km.shutdown_kernel)(now=True)
                run_sync(km.cleanup_resources)()
            except Exception:  # noqa: BLE001 - best effort: the kernel is ours and unused
                pass
        self._sockets.cleanup()

    def __enter__(self) -> WarmKernel:
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
