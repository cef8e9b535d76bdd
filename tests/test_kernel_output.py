"""A notebook kernel's own output (ipykernel's log on its standard error) goes to a log file, not
to the terminal of the racemap command that started it: a Ctrl-C'd run printed
"[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel." above its one line."""

from __future__ import annotations

import asyncio
import signal

from racemap.reporting.notebooks import SharedKernel, _kernel_manager_class


def test_a_kernels_own_output_goes_to_its_log_not_the_terminal(tmp_path, capfd):
    log = tmp_path / "kernel.log"

    async def write_to_the_kernels_stderr():
        km = _kernel_manager_class(log)(kernel_name="python3")
        await km.start_kernel()
        kc = km.client()
        kc.start_channels()
        try:
            await kc.wait_for_ready(timeout=60)
            # Below sys.stderr (which the kernel sends to the client): its file descriptor 2.
            reply = await kc.execute_interactive(
                "import os; os.write(2, b'the kernel speaks\\n')", timeout=60
            )
            assert reply["content"]["status"] == "ok"
        finally:
            kc.stop_channels()
            await km.shutdown_kernel()

    asyncio.run(write_to_the_kernels_stderr())
    captured = capfd.readouterr()
    assert "the kernel speaks" not in captured.out + captured.err
    assert "the kernel speaks" in log.read_text()


def test_a_shared_kernel_is_stopped_at_once_when_its_notebooks_are_done():
    """Its notebooks are saved and their connections closed: the kernel, idle, is killed
    (nbclient's "immediate" shut-down), not asked to shut down and waited for (its
    interpreter's clean-up took half a second of every run)."""
    from nbclient.util import run_sync

    kernel = SharedKernel()
    km = kernel.manager()

    async def start_and_wait_until_idle():
        await km.start_kernel()
        kc = km.client()
        kc.start_channels()
        try:
            await kc.wait_for_ready(timeout=60)
        finally:
            kc.stop_channels()

    run_sync(start_and_wait_until_idle)()
    process = km.provisioner.process
    kernel.close()
    assert process.returncode == -signal.SIGKILL
    assert not kernel.log_path.parent.exists()


def test_a_kernel_that_dies_in_a_notebook_is_the_error_racemap_reports_alone(
    tmp_path, caplog, monkeypatch
):
    """nbclient logs "Kernel died while waiting for execute reply." through papermill's logger
    before it raises; with no handler of racemap's, Python printed that record on standard error
    above racemap's one line (seen on a Ctrl-C'd run's load). The exception is what racemap
    reports; papermill's warnings still reach standard error."""
    import logging

    import nbformat
    import pytest
    from nbclient.exceptions import DeadKernelError

    from racemap.reporting import notebooks

    book = nbformat.v4.new_notebook(
        metadata={
            "kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"},
            "language_info": {"name": "python"},
        }
    )
    book.cells = [
        nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("import os, signal; os.kill(os.getpid(), signal.SIGKILL)"),
    ]
    nbformat.write(book, tmp_path / "dies.ipynb")
    monkeypatch.setattr(notebooks, "NOTEBOOKS_DIR", tmp_path)
    with pytest.raises(DeadKernelError):
        notebooks.execute("dies", tmp_path / "out", {"x": 2})
    logging.getLogger("papermill").warning("a warning of papermill's")
    logged = [record.getMessage() for record in caplog.records]
    assert logged == ["a warning of papermill's"]
