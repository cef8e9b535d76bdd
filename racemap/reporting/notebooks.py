"""Running the project's notebooks with papermill; executed copies go to reports/notebooks/ (a
run's notebooks) and reports/races/ (race pages)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from racemap.errors import RacemapError
from racemap.paths import NOTEBOOKS_DIR, PROJECT_DIR


def _ipc_config(sockets_dir: str):
    """The kernel talks over Unix sockets in a private directory, not TCP on localhost
    (ipykernel warns about unencrypted TCP on every start)."""
    from traitlets.config import Config

    return Config({"KernelManager": {"transport": "ipc", "ip": f"{sockets_dir}/kernel"}})


def _kernel_manager_class(log_path: Path):
    """nbclient's kernel manager, with the kernel's own output (ipykernel's log, not the cells'
    output, which travels over its sockets) written to ``log_path``, not the terminal: a
    graceful shutdown interrupts the kernel first, and one that was handling a message then logs
    "KeyboardInterrupt caught in kernel" to its standard error (seen on a Ctrl-C'd run)."""
    import subprocess

    from jupyter_client.manager import AsyncKernelManager

    class LoggedKernelManager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd, **kw):
            with open(log_path, "ab") as log:  # the child holds its own copy of the descriptor
                kw.setdefault("stdout", log)
                kw.setdefault("stderr", subprocess.STDOUT)
                await super()._async_launch_kernel(kernel_cmd, **kw)

    return LoggedKernelManager


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return next((line.strip() for line in reversed(lines) if line.strip()), "")


def run(name: str, output: Path, parameters: dict, timeout: int, label: str) -> Path:
    """Execute ``notebooks/<name>.ipynb`` into ``output`` (its directory created); a failing cell
    is a RacemapError naming ``label`` and the cell's exception.

    Credentials never travel as parameters (papermill writes parameters into the notebook):
    the kernel inherits DATABASE_URL and the PG* variables from this process's environment.
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="racemap-kernel-") as private:
        kernel_log = Path(private) / "kernel.log"
        try:
            pm.execute_notebook(
                str(NOTEBOOKS_DIR / f"{name}.ipynb"),
                str(output),
                parameters=parameters,
                cwd=str(PROJECT_DIR),
                kernel_name="python3",
                progress_bar=False,
                execution_timeout=timeout,
                log_output=False,
                config=_ipc_config(private),
                kernel_manager_class=_kernel_manager_class(kernel_log),
            )
        except PapermillExecutionError as exc:
            # The kernel's exception: for a RacemapError that is already the one clear line.
            raise RacemapError(
                f"{label} failed ({exc.ename}): {exc.evalue} — see {output}"
            ) from None
        except Exception as exc:  # the kernel died or did not start: its log says why
            if tail := _last_line(kernel_log):
                exc.add_note(f"the kernel's last words: {tail}")
            raise
    return output


def execute(
    name: str,
    reports_dir: Path,
    parameters: dict | None = None,
    timeout: int = 900,
) -> Path:
    """Execute ``notebooks/<name>.ipynb`` into ``<reports_dir>/notebooks/<name>.ipynb``."""
    output = Path(reports_dir) / "notebooks" / f"{name}.ipynb"
    return run(name, output, parameters or {}, timeout, f"notebook {name}")
