"""The pages people read: Data Docs and the mapping report, opened in headless Chromium.

One pipeline run for the module, with a DATABASE_URL that carries a password (the test server
trusts local connections, so any password works): the reports and the GX context must not hold it.
Each page is loaded through the DevTools protocol (websocket-client, pinned via jupyter_server):
JavaScript exceptions, console errors and failed resource loads all count as console errors. A
screenshot of each page is kept in the test's directory (and must not be blank).

Chromium comes from Debian's ``chromium`` package: ``scripts/ensure_chromium.sh`` installs it.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from base64 import b64decode
from pathlib import Path

import pytest
import websocket
from conftest import SECRET

from racemap.pipeline import format_summary

CHROMIUM = shutil.which("chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,2000",
    "--remote-debugging-port=0",
    "--remote-allow-origins=*",
]


@pytest.fixture(autouse=True)
def _chromium():
    """Skipped without Chromium on a workstation; in CI (``CI`` set) that is a failure."""
    if not CHROMIUM:
        message = "chromium missing: run scripts/ensure_chromium.sh"
        (pytest.fail if os.environ.get("CI") else pytest.skip)(message)


@pytest.fixture
def secret_run(mapped_template):
    """The session's shared offline run, whose DATABASE_URL has the password SECRET."""
    return mapped_template


class Page:
    """A page loaded in headless Chromium: its errors, its DOM text and a screenshot."""

    def __init__(self, errors: list[str], html: str, text: str, screenshot: bytes):
        self.errors, self.html, self.text, self.screenshot = errors, html, text, screenshot


def open_page(path: Path, shot: Path, settle: float = 1.5) -> Page:
    profile = tempfile.mkdtemp(prefix="racemap-chromium-")
    proc = subprocess.Popen(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = _devtools_port(proc, Path(profile))
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
        page_ws = next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"]
        ws = websocket.create_connection(page_ws, timeout=30)
        cdp = _Cdp(ws)
        for domain in ("Page", "Runtime", "Log"):
            cdp.call(f"{domain}.enable")
        cdp.call(
            "Emulation.setDeviceMetricsOverride",
            width=1280,
            height=2000,
            deviceScaleFactor=1,
            mobile=False,
        )
        cdp.call("Page.navigate", url=path.resolve().as_uri())
        cdp.wait_for("Page.loadEventFired", timeout=30)
        cdp.drain(settle)
        html = cdp.call("Runtime.evaluate", expression="document.documentElement.outerHTML")
        text = cdp.call("Runtime.evaluate", expression="document.body.innerText")
        data = cdp.call("Page.captureScreenshot", format="png")["data"]
        ws.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)
    shot.write_bytes(b64decode(data))
    return Page(cdp.errors, html["result"]["value"], text["result"]["value"], shot.read_bytes())


def _devtools_port(proc, profile: Path) -> int:
    deadline = time.monotonic() + 30
    port_file = profile / "DevToolsActivePort"
    while time.monotonic() < deadline:
        if port_file.is_file() and port_file.read_text().strip():
            return int(port_file.read_text().splitlines()[0])
        if proc.poll() is not None:
            raise RuntimeError(f"chromium exited: {proc.stderr.read()[-2000:]}")
        time.sleep(0.1)
    raise TimeoutError("chromium did not open its DevTools port")


class _Cdp:
    """A minimal DevTools protocol client that records every error the page reports."""

    def __init__(self, ws):
        self.ws, self.next_id, self.errors, self.events = ws, 0, [], []

    def _handle(self, message: dict) -> None:
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            description = details.get("exception", {}).get("description") or details.get("text")
            self.errors.append(f"exception: {description}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in {"error", "assert"}:
            args = " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
            self.errors.append(f"console.{params['type']}: {args}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            self.errors.append(f"{entry['source']}: {entry['text']} {entry.get('url', '')}")
        if method:
            self.events.append(method)

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self._handle(message)

    def wait_for(self, event: str, timeout: float) -> None:
        self.ws.settimeout(timeout)
        while event not in self.events:
            self._handle(json.loads(self.ws.recv()))

    def drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.ws.settimeout(left)
            try:
                self._handle(json.loads(self.ws.recv()))
            except websocket.WebSocketTimeoutException:
                break


def assert_not_blank(png: bytes) -> None:
    """The screenshot has content: a real PNG, and not one flat colour."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("L")
    low, high = image.getextrema()
    assert image.size == (1280, 2000) and high - low > 100
    assert sum(1 for n in image.resize((64, 100)).histogram() if n) > 8


def test_data_docs_page_shows_the_validation_results(secret_run, tmp_path):
    _db, result, reports = secret_run
    assert result.exit_code == 0, result.failures
    page = open_page(reports / "validation" / "index.html", tmp_path / "data_docs.png")
    assert page.errors == []
    for suite in (
        "raw_openf1_meetings",
        "raw_openf1_sessions",
        "races_openf1_keys",
        "race_openf1_mapping",
        "mapping_coverage",
    ):
        assert suite in page.text
    assert f"{result.run_id}-raw" in page.text and f"{result.run_id}-mapping" in page.text
    assert page.html.count('class="clickable-row"') >= 5  # one row per validation result
    assert "http://" not in page.html.split("<body")[0]
    assert "https://" not in page.html.split("<body")[0]
    assert_not_blank(page.screenshot)


def test_a_validation_result_page_opens_without_errors(secret_run, tmp_path):
    _db, result, reports = secret_run
    pages = sorted((reports / "validation" / "validations" / "races_openf1_keys").rglob("*.html"))
    page = open_page(pages[-1], tmp_path / "races_openf1_keys.png")
    assert page.errors == []
    assert "openf1_session_key" in page.text and "Grand Prix race session" in page.text
    assert_not_blank(page.screenshot)


def test_mapping_report_shows_the_coverage_chart(secret_run, tmp_path):
    _db, result, reports = secret_run
    html = reports / "mapping_report.html"
    page = open_page(html, tmp_path / "mapping_report.png")
    assert page.errors == []
    assert 'alt="Mapping coverage by season"' in page.html
    assert "data:image/png;base64," in page.html
    for heading in (
        "Coverage by season",
        "Unmapped races by reason",
        "Updates of this run",
        "Conflicts",
    ):
        assert heading in page.text
    assert "before_openf1_coverage" in page.text and "no_meeting" in page.text
    assert result.run_id in page.text
    assert "import " not in page.text  # code cells are left out of the page
    assert_not_blank(page.screenshot)


def test_mapping_report_notebook_is_executed_and_stored_clean(secret_run):
    _db, result, reports = secret_run
    executed = json.loads((reports / "notebooks" / "mapping_report.ipynb").read_text())
    parameters = executed["metadata"]["papermill"]["parameters"]
    assert parameters["run_id"] == result.run_id and parameters["coverage_threshold"] == 1.0
    assert set(parameters) == {"reports_dir", "run_id", "coverage_threshold"}
    source = json.loads(
        (Path(__file__).parent.parent / "notebooks" / "mapping_report.ipynb").read_text()
    )
    code = [c for c in source["cells"] if c["cell_type"] == "code"]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    assert code[0]["metadata"]["tags"] == ["parameters"]


def test_summary_is_complete_and_printed_as_a_table(secret_run):
    _db, result, reports = secret_run
    summary = json.loads((reports / "summary.json").read_text())
    assert summary["races"] == 1160 and summary["mapped"] == 70
    assert summary["unmapped_by_reason"] == {"before_openf1_coverage": 1079, "no_meeting": 11}
    assert summary["updates_applied"] == 70 and summary["openf1"]["requests"] == 0
    assert summary["validations"]["passed"] == 2 and summary["validations"]["failed"] == 0
    assert [c["name"] for c in summary["checkpoints"]] == ["raw", "mapping"]
    assert summary["coverage"]["2024"] == {
        "races_with_race_session": 24,
        "mapped": 24,
        "coverage": 1.0,
    }
    assert "reports" in summary["stage_seconds"]
    table = format_summary(summary)
    for line in (
        "races            1160",
        "mapped           70",
        "  no_meeting              11",
        "updates applied  70 of 70",
        "validations      2 passed, 0 failed",
        "OpenF1 requests  0",
    ):
        assert line in table.splitlines()
    assert "2023 100%" in table


def test_no_secret_in_reports_or_the_gx_context(secret_run):
    _db, _result, reports = secret_run
    roots = [reports, Path(os.environ["RACEMAP_GX_ROOT"])]
    leaks = [
        str(path)
        for root in roots
        for path in root.rglob("*")
        if path.is_file() and SECRET.encode() in path.read_bytes()
    ]
    assert leaks == []
    assert (Path(os.environ["RACEMAP_GX_ROOT"]) / "gx" / "great_expectations.yml").is_file()
    config = (Path(os.environ["RACEMAP_GX_ROOT"]) / "gx" / "great_expectations.yml").read_text()
    assert "${RACEMAP_GX_DATABASE_URL}" in config
