"""Running the project's notebooks with papermill; executed copies go to reports/notebooks/ (a
run's notebooks) and reports/races/ (race pages)."""

from __future__ import annotations

import contextlib
import functools
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


@functools.cache
def _papermill_errors_raised_not_logged() -> None:
    """papermill's logger (nbclient logs through it) without its error records: each comes just
    before the exception racemap reports in its one line ("Kernel died while waiting for
    execute reply." on Ctrl-C during a notebook; "Timeout waiting for execute reply"). Its
    warnings (an unknown parameter) still reach standard error."""
    import logging

    logging.getLogger("papermill").addFilter(lambda record: record.levelno < logging.ERROR)


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return next((line.strip() for line in reversed(lines) if line.strip()), "")


def run(
    name: str,
    output: Path,
    parameters: dict,
    timeout: int,
    label: str,
    kernel: SharedKernel | None = None,
) -> Path:
    """Execute ``notebooks/<name>.ipynb`` into ``output`` (its directory created); a failing cell
    is a RacemapError naming ``label`` and the cell's exception. ``kernel``: a kernel shared with
    the notebooks before and after this one (:class:`SharedKernel`), else one of its own.

    Credentials never travel as parameters (papermill writes parameters into the notebook):
    the kernel inherits DATABASE_URL and the PG* variables from this process's environment.
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    _papermill_errors_raised_not_logged()
    with contextlib.ExitStack() as stack:
        if kernel is None:
            private = stack.enter_context(tempfile.TemporaryDirectory(prefix="racemap-kernel-"))
            kernel_log = Path(private) / "kernel.log"
            engine = {
                "config": _ipc_config(private),
                "kernel_manager_class": _kernel_manager_class(kernel_log),
                # Stopped at once after its notebook, as SharedKernel.close stops a shared one.
                "shutdown_kernel": "immediate",
            }
        else:
            kernel.ready()
            kernel_log = kernel.log_path
            engine = {"engine_name": _shared_kernel_engine(), "shared": kernel}
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
                **engine,
            )
        except PapermillExecutionError as exc:
            # The kernel's exception: for a RacemapError that is already the one clear line.
            raise RacemapError(
                f"{label} failed ({exc.ename}): {exc.evalue} — see {output}"
            ) from None
        except BaseException as exc:  # the kernel died, did not start or timed out
            if kernel is not None:
                kernel.discard()  # the next notebook starts a kernel of its own
            if not isinstance(exc, Exception):
                raise
            if tail := _last_line(kernel_log):
                exc.add_note(f"the kernel's last words: {tail}")
            raise
    return output


# Run in a shared kernel before its next notebook: a new IPython session (namespace, history
# and prompt numbers as in a kernel just started) with no figure of the last notebook open.
_NEW_SESSION = """\
import sys as _racemap_sys
if "matplotlib.pyplot" in _racemap_sys.modules:
    _racemap_sys.modules["matplotlib.pyplot"].close("all")
get_ipython().reset(new_session=True)
"""


class SharedKernel:
    """One python3 kernel for several notebooks in a row (a run's load record and mapping report,
    the race pages of a sync): started by the first notebook, a new session before each next
    one, shut down by :meth:`close` (or the ``with`` block's end). Each later notebook saves the
    kernel's start and the imports of the one before (pandas, matplotlib, racemap): a second or
    more of a core each. A failing cell keeps the kernel; a kernel that died (during a notebook
    or between two) or timed out is discarded, and the next notebook starts anew.

    What carries over is only what a new IPython session keeps: the imported modules (and
    their caches), the working directory and the environment, which are the same for every
    notebook of one run or one sync. The kernel's client belongs to the thread that started it
    (its sockets live on that thread's event loop): its notebooks run on that thread."""

    def __init__(self) -> None:
        self._private = tempfile.TemporaryDirectory(prefix="racemap-kernel-")
        self.log_path = Path(self._private.name) / "kernel.log"
        self.km = None  # the kernel's manager, made when a notebook needs the kernel
        self.kc = None  # the client of the kernel, kept by its first notebook

    def __enter__(self) -> SharedKernel:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def manager(self):
        """The kernel's manager, unstarted until its first notebook runs."""
        if self.km is None:
            self.km = _kernel_manager_class(self.log_path)(
                kernel_name="python3", config=_ipc_config(self._private.name)
            )
        return self.km

    def ready(self) -> None:
        """Before a notebook: a kernel that has died since the last one (killed, out of memory)
        is discarded, so this notebook starts a new one instead of failing on it."""
        from nbclient.util import ensure_async, run_sync

        km = self.km
        if km is None or not km.has_kernel:
            return

        async def alive() -> bool:
            return await ensure_async(km.is_alive())

        if not run_sync(alive)():
            self.discard()

    def discard(self, now: bool = False) -> None:
        """Shut the kernel down (if it runs) and forget it; its log stays until :meth:`close`.
        ``now``: stopped at once (nbclient's "immediate"), not asked to shut down."""
        from nbclient.util import ensure_async, run_sync

        km, kc = self.km, self.kc
        self.km, self.kc = None, None
        if km is None:
            return

        async def shutdown():
            try:
                if km.has_kernel and await ensure_async(km.is_alive()):
                    await ensure_async(km.shutdown_kernel(now=now))
            finally:
                await ensure_async(km.cleanup_resources())
                if kc is not None:
                    kc.stop_channels()

        run_sync(shutdown)()

    def close(self) -> None:
        """The end of the kernel's notebooks: the kernel is stopped at once. Nothing of it is
        left to keep: its notebooks are saved by papermill in this process, their connections
        closed, and a kernel still running a cell (an interrupted run) is stopped all the same;
        asked to shut down, it took 0.5 s (its interpreter's clean-up of pandas and matplotlib),
        which the run waited for."""
        try:
            self.discard(now=True)
        finally:
            self._private.cleanup()


_ENGINE = "racemap_shared_kernel"


@functools.cache
def _shared_kernel_engine() -> str:
    """papermill's nbclient engine on a :class:`SharedKernel` (registered once): the notebook's
    client is given the shared kernel's manager and, after its first notebook, its client, and
    runs a new session first; nbclient leaves a kernel it does not own running."""
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines

    class SharedKernelClient(PapermillNotebookClient):
        def __init__(self, nb_man, shared: SharedKernel, **kw):
            super().__init__(nb_man, km=shared.manager(), **kw)
            self.shared = shared
            self.kc = shared.kc  # None for the kernel's first notebook: nbclient makes it

        def papermill_execute_cells(self):
            if self.shared.kc is not None:  # a notebook ran in this kernel before
                reply = self.wait_for_reply(
                    self.kc.execute(_NEW_SESSION, silent=True, store_history=False)
                )
                if reply is None or reply["content"]["status"] != "ok":
                    raise RuntimeError("the shared kernel could not start a new session")
            self.shared.kc = self.kc
            super().papermill_execute_cells()

    class SharedKernelEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(
            cls,
            nb_man,
            kernel_name,
            log_output=False,
            stdout_file=None,
            stderr_file=None,
            start_timeout=60,
            execution_timeout=None,
            shared: SharedKernel | None = None,
            **kwargs,
        ):
            from papermill.log import logger

            kwargs.pop("input_path", None)
            return SharedKernelClient(
                nb_man,
                shared,
                timeout=execution_timeout,
                startup_timeout=start_timeout,
                kernel_name=kernel_name,
                log=logger,
                log_output=log_output,
                stdout_file=stdout_file,
                stderr_file=stderr_file,
                **kwargs,
            ).execute()

    papermill_engines.register(_ENGINE, SharedKernelEngine)
    return _ENGINE


class NotebookRunner:
    """A run's notebooks, each executed into ``<reports_dir>/notebooks/<name>.ipynb`` when
    called, in one :class:`SharedKernel` (``shared``; else a kernel each): the mapping report
    runs in the kernel the load's record started, which saves it a kernel's start and the
    imports (``racemap bench --parts devices`` measures it against a kernel each)."""

    def __init__(self, reports_dir: Path, shared: bool = True) -> None:
        self.reports_dir = Path(reports_dir)
        self._kernel = SharedKernel() if shared else None

    def run(self, name: str, parameters: dict, timeout: int = 900) -> Path:
        """Execute ``notebooks/<name>.ipynb``; the executed copy's path."""
        output = self.reports_dir / "notebooks" / f"{name}.ipynb"
        return run(name, output, parameters, timeout, f"notebook {name}", self._kernel)

    def close(self) -> None:
        """Shut the shared kernel down."""
        if self._kernel is not None:
            self._kernel.close()

    def __enter__(self) -> NotebookRunner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def execute(
    name: str,
    reports_dir: Path,
    parameters: dict | None = None,
    timeout: int = 900,
) -> Path:
    """Execute ``notebooks/<name>.ipynb`` into ``<reports_dir>/notebooks/<name>.ipynb``, at once
    and in a kernel of its own."""
    with NotebookRunner(reports_dir, shared=False) as notebooks:
        return notebooks.run(name, parameters or {}, timeout)


# -- HTML export -------------------------------------------------------------------------------
# nbconvert's lab template loads require.js, MathJax and Mermaid from CDNs; the reports need none
# of them (their charts are embedded PNGs), so the pages open offline without console errors.
_REPORT_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{% block data_png scoped %}
<div class="jp-RenderedImage jp-OutputArea-output {{ extra_class }}">
<img src="data:image/png;base64,{{ output.data['image/png'] | escape_html }}"
 alt="{{ (output | get_metadata('alt', 'image/png')) or 'chart' | escape_html }}">
</div>
{% endblock data_png %}
"""


@functools.cache
def html_exporter():
    """nbconvert's HTML exporter of the reports, made once per process with its template
    compiled: importing nbconvert and compiling take about half a second of a core, which a run
    spends while its mapping checks run in the GX worker, not after its report."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name="lab",
        extra_loaders=[DictLoader({"racemap_report.html.j2": _REPORT_TEMPLATE})],
        template_file="racemap_report.html.j2",
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    exporter.template  # noqa: B018 - compiled now, not on the first page
    return exporter


def export_html(notebook: Path, html: Path) -> Path:
    """The executed notebook as one self-contained HTML page, without the code cells."""
    import nbformat

    body, _resources = html_exporter().from_notebook_node(
        nbformat.read(str(notebook), as_version=4)
    )
    html = Path(html)
    html.parent.mkdir(parents=True, exist_ok=True)
    html.write_text(body, encoding="utf-8")
    return html
