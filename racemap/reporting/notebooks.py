"""Running the project's notebooks with papermill; executed copies go to reports/notebooks/."""

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


def execute(
    name: str,
    reports_dir: Path,
    parameters: dict | None = None,
    timeout: int = 900,
) -> Path:
    """Execute ``notebooks/<name>.ipynb`` into ``<reports_dir>/notebooks/<name>.ipynb``.

    Credentials never travel as parameters (papermill writes parameters into the notebook):
    the kernel inherits DATABASE_URL and the PG* variables from this process's environment.
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    source = NOTEBOOKS_DIR / f"{name}.ipynb"
    out_dir = Path(reports_dir) / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / f"{name}.ipynb"
    sockets = tempfile.TemporaryDirectory(prefix="racemap-kernel-")
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
        )
    except PapermillExecutionError as exc:
        # The kernel's exception: for a RacemapError that is already the one clear line.
        raise RacemapError(
            f"notebook {name} failed ({exc.ename}): {exc.evalue} — see {output}"
        ) from None
    finally:
        sockets.cleanup()
    return output
