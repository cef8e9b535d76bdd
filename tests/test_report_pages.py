"""The pages people read: Data Docs, the mapping report and the race pages, opened in headless
Chromium.

One pipeline run for the module, with a DATABASE_URL that carries a password (the test server
trusts local connections, so any password works): the reports and the GX context must not hold it.
Each page is loaded by Playwright for Python (https://playwright.dev/python/) driving Debian's
Chromium (``executable_path``: Playwright's own browser download is not used). JavaScript
exceptions (``pageerror``), console errors and failed requests (``requestfailed``) all count as
errors. A screenshot of each page is kept in the test's directory (and must not be blank).

Chromium comes from Debian's ``chromium`` package: ``scripts/ensure_chromium.sh`` installs it.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import SECRET

from racemap.reporting.run_summary import format_summary

CHROMIUM = shutil.which("chromium")  # Debian's: /usr/bin/chromium
VIEWPORT = {"width": 1280, "height": 2000}


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium for the module; skipped without it on a workstation, failed in CI."""
    if not CHROMIUM:
        message = "chromium missing: run scripts/ensure_chromium.sh"
        (pytest.fail if os.environ.get("CI") else pytest.skip)(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def secret_run(mapped_template):
    """The session's shared offline run, whose DATABASE_URL has the password SECRET."""
    return mapped_template


@dataclass
class Page:
    """A page loaded in headless Chromium: its errors, its DOM, its text and a screenshot."""

    errors: list[str]
    html: str
    text: str
    screenshot: bytes


def open_page(
    browser, path: Path, shot: Path, settle: float = 1.5, follow: str | None = None
) -> Page:
    """``path`` loaded; with ``follow``, the page its link of that name leads to, clicked as a
    reader would (the errors of both pages count)."""
    errors: list[str] = []
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    page = context.new_page()
    page.on(
        "console",
        lambda message: (
            errors.append(f"console.{message.type}: {message.text}")
            if message.type in {"error", "assert"}
            else None
        ),
    )
    page.on("pageerror", lambda error: errors.append(f"exception: {error}"))
    page.on(
        "requestfailed",
        lambda request: errors.append(f"request failed: {request.url} ({request.failure})"),
    )
    try:
        page.goto(path.resolve().as_uri(), wait_until="load", timeout=30_000)
        if follow is not None:
            page.get_by_role("link", name=follow, exact=True).click()
            page.wait_for_load_state("load")
        page.wait_for_timeout(settle * 1000)  # scripts that run after load have their say
        html = page.content()
        text = page.inner_text("body")
        png = page.screenshot(path=shot)
    finally:
        context.close()
    return Page(errors, html, text, png)


def assert_not_blank(png: bytes) -> None:
    """The screenshot has content: a real PNG, and not one flat colour."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("L")
    low, high = image.getextrema()
    assert image.size == (1280, 2000) and high - low > 100
    assert sum(1 for n in image.resize((64, 100)).histogram() if n) > 8


def test_the_browser_reports_every_kind_of_error(browser, tmp_path):
    """What the pages below must not have, each caught: a console error, an exception, a failed
    request (a missing file here; offline, a CDN's); and a blank page is not taken for one."""
    broken = tmp_path / "broken.html"
    broken.write_text(
        '<!DOCTYPE html><html><body><h1>broken</h1><img src="missing.png">'
        '<script>console.error("logged"); throw new Error("thrown");</script></body></html>'
    )
    page = open_page(browser, broken, tmp_path / "broken.png", settle=0.5)
    assert "console.error: logged" in page.errors
    assert any(e.startswith("exception: ") and "thrown" in e for e in page.errors)
    assert any(e.startswith("request failed: ") and "missing.png" in e for e in page.errors)
    assert page.text.strip() == "broken"
    empty = tmp_path / "empty.html"
    empty.write_text("<!DOCTYPE html><html><body></body></html>")
    blank = open_page(browser, empty, tmp_path / "empty.png", settle=0)
    assert blank.errors == []
    with pytest.raises(AssertionError):
        assert_not_blank(blank.screenshot)


def test_data_docs_page_shows_the_validation_results(browser, secret_run, tmp_path):
    _db, result, reports = secret_run
    assert result.exit_code == 0, result.failures
    page = open_page(browser, reports / "validation" / "index.html", tmp_path / "data_docs.png")
    assert page.errors == []
    assert SECRET not in page.html and SECRET not in page.text
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


def test_a_validation_result_page_opens_without_errors(browser, secret_run, tmp_path):
    _db, result, reports = secret_run
    pages = sorted((reports / "validation" / "validations" / "races_openf1_keys").rglob("*.html"))
    page = open_page(browser, pages[-1], tmp_path / "races_openf1_keys.png")
    assert page.errors == []
    assert SECRET not in page.html and SECRET not in page.text
    assert "openf1_session_key" in page.text and "each race holds its own mapping" in page.text
    assert_not_blank(page.screenshot)


def test_mapping_report_shows_the_coverage_chart(browser, secret_run, tmp_path):
    _db, result, reports = secret_run
    html = reports / "mapping_report.html"
    page = open_page(browser, html, tmp_path / "mapping_report.png")
    assert page.errors == []
    assert SECRET not in page.html and SECRET not in page.text
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


@pytest.fixture(scope="module")
def synced_1125(mapped_template, tmp_path_factory):
    """``racemap sync`` of the 2024 Chinese GP's positions (race 1125: a race and a sprint) on a
    copy of the shared run's database, into a copy of the run's published set, once for the
    tests that open its pages (they only read them): (exit code, the report set's folder)."""
    from conftest import AS_OF, database_copy

    from racemap import cli

    reports = tmp_path_factory.mktemp("synced-1125") / "reports"
    shutil.copytree(mapped_template[2], reports, symlinks=True)  # the run's published set
    with database_copy(mapped_template[0]) as db:
        args = ["sync", "--database-url", db.url, "--offline", "--race-id", "1125"]
        args += ["--var", f"as_of={AS_OF}"]  # the copy's vars (conftest._parsed_state)
        code = cli.main([*args, "--endpoints", "position", "--reports-dir", str(reports)])
    return code, reports


def test_the_race_pages_index_leads_to_pages_that_open(browser, synced_1125, tmp_path):
    """race_pages.html of a sync, opened from the report set's top folder as a reader would: no
    error, and its link to the 2024 Chinese GP's sprint opens that page, with its chart."""
    code, reports = synced_1125
    assert code == 0
    index = open_page(browser, reports / "race_pages.html", tmp_path / "race_pages.png")
    assert index.errors == []
    assert "2 pages of 1 race," in index.text and "Chinese Grand Prix" in index.text
    link = "races/sprint/1125.html"
    sprint = open_page(browser, reports / "race_pages.html", tmp_path / "sprint.png", follow=link)
    assert sprint.errors == []
    assert "; sprint: 9672" in sprint.text and "Positions over the session" in sprint.text
    assert "data:image/png;base64," in sprint.html  # the chart, embedded
    assert_not_blank(sprint.screenshot)


def test_the_mapping_report_counts_the_race_pages_a_later_sync_renders(
    browser, secret_run, synced_1125, tmp_path
):
    """The run's mapping report says last how many race pages its set holds; a sync that adds
    pages to the set says so there too (it carries the run's report over), in the page and in
    the executed notebook beside it, and the report's link opens their index."""
    # The run's published set, as the sync's folder was before the sync (a copy of it).
    before = open_page(browser, secret_run[2] / "mapping_report.html", tmp_path / "before.png")
    assert "No race pages yet" in before.text
    code, reports = synced_1125
    assert code == 0
    report = open_page(browser, reports / "mapping_report.html", tmp_path / "after.png")
    assert report.errors == []
    assert "No race pages yet" not in report.text
    assert "2 race pages of 1 race, from racemap sync: race_pages.html" in report.text
    assert secret_run[1].run_id in report.text  # still the run's report
    executed = (reports / "notebooks" / "mapping_report.ipynb").read_text()
    assert "No race pages yet" not in executed and "2 race pages of 1 race" in executed
    index = open_page(
        browser, reports / "mapping_report.html", tmp_path / "index.png", follow="race_pages.html"
    )
    assert index.errors == [] and "2 pages of 1 race," in index.text


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
        "races": 24,
        "races_expected": 24,
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
    # Counts of one read in the singular.
    one = {
        **summary,
        "verdict": "attention",
        "attention": [{"race_id": "1138"}],
        "changes": {"total": 1, "previous_run_id": "r1", "counts": {"mapped": 1}},
    }
    lines = format_summary(one).splitlines()
    assert "changes          1 change since run r1: 1 mapped" in lines
    assert "verdict          attention (1 race needs attention)" in lines


def test_no_secret_in_reports_or_the_gx_context(secret_run, mapped_template_state):
    _db, _result, reports = secret_run
    gx_root = mapped_template_state / "gx-root"  # the run's Great Expectations context
    roots = [reports, gx_root]
    leaks = [
        str(path)
        for root in roots
        for path in root.rglob("*")
        if path.is_file() and SECRET.encode() in path.read_bytes()
    ]
    assert leaks == []
    assert (gx_root / "gx" / "great_expectations.yml").is_file()
    config = (gx_root / "gx" / "great_expectations.yml").read_text()
    assert "${RACEMAP_GX_DATABASE_URL}" in config


def _execute_from_notebooks_dir(output: Path):
    """notebooks/mapping_report.ipynb as JupyterLab runs it: the kernel's working directory
    ``notebooks/``, no parameter, the database from DATABASE_URL."""
    import papermill as pm

    from racemap.paths import NOTEBOOKS_DIR

    return pm.execute_notebook(
        str(NOTEBOOKS_DIR / "mapping_report.ipynb"),
        str(output),
        cwd=str(NOTEBOOKS_DIR),
        kernel_name="python3",
        progress_bar=False,
    )


def test_the_analysts_notebook_finds_its_run_from_notebooks_dir(
    mapped_template, fresh_db, tmp_path, monkeypatch
):
    from papermill.exceptions import PapermillExecutionError

    from racemap.paths import DEFAULT_REPORTS_DIR

    db, result, reports = mapped_template
    # The run's set where a run with the default reports folder puts it: reports/<database>/.
    default = DEFAULT_REPORTS_DIR / db.dbname
    shutil.copytree(reports, default, symlinks=True)
    try:
        monkeypatch.setenv("DATABASE_URL", db.url)
        executed = _execute_from_notebooks_dir(tmp_path / "ran.ipynb")
    finally:
        shutil.rmtree(default, ignore_errors=True)
    text = json.dumps([c.get("outputs", []) for c in executed["cells"]])  # what it shows
    assert f"**Run** `{result.run_id}`" in text
    assert "Changes not computed" not in text and "No updates" not in text
    assert "image/png" in text and "2024" in text  # the coverage chart and table

    # A database no run has reached: one plain line saying so, and what to do.
    monkeypatch.setenv("DATABASE_URL", fresh_db.url)
    with pytest.raises(PapermillExecutionError) as info:
        _execute_from_notebooks_dir(tmp_path / "none.ipynb")
    assert info.value.ename == "NoRunYet"
    assert "No racemap run yet" in info.value.evalue and "racemap run" in info.value.evalue


def test_attention_seasons_are_years_and_the_summary_has_a_header():
    from racemap.reporting import report_data

    rows = [  # as racemap.races_needing_attention gives them: an unusable row has no season
        {"race_id": "1125", "season": 2024, "race_name": "Chinese Grand Prix"},
        {"race_id": "x", "season": None, "race_name": None, "reason": "invalid_race"},
    ]
    html = report_data.table(report_data.attention_frame(rows)).data
    assert ">2024<" in html and "2024.0" not in html
    table = report_data.summary_table({"run_id": "r1", "verdict": "ok"})
    assert list(table.columns) == ["this run"] and table.loc["verdict", "this run"] == "ok"


def test_data_docs_escape_the_unexpected_values_of_the_application(browser, secret_run, tmp_path):
    """Great Expectations lists a failed expectation's unexpected values in its Data Docs: here
    race ids from the application's table (a race whose results disagree) and a reason word.
    They are text on the page, never markup: no script runs, no element is made of them."""
    from conftest import database_copy, gx_root

    from racemap.checks import validate
    from racemap.settings import RacesTable

    markup = "<img src=x onerror=alert(1)>"
    named = '&amp; "Q" <b>bold</b> ü'
    with database_copy(secret_run[0]) as db:
        with db.transaction() as conn, conn.cursor() as cur:
            cur.execute(
                "update racemap.race_openf1_mapping set race_id = %s, results_check = 'disagree'"
                " where race_id = '1125'",
                (markup,),
            )
            cur.execute(
                "update racemap.race_openf1_mapping set reason = %s where race_id = '1169'",
                (named,),
            )
        races = RacesTable("public", "races", "id")
        outcome = validate.run_checkpoint(
            db, "mapping", races, tmp_path, "test-escaped", gx_root=gx_root()
        )
    assert not outcome.success or outcome.attention
    # This run's page: the site also keeps the pages of earlier runs of the same GX context
    # (another test's, in the same worker).
    pages = sorted(
        (tmp_path / "validation" / "validations" / "race_openf1_mapping").rglob(
            "test-escaped/**/*.html"
        )
    )
    assert pages
    dialogs: list[str] = []
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    try:
        page.goto(pages[-1].resolve().as_uri(), wait_until="load")
        page.wait_for_timeout(500)
        text = page.inner_text("body")
        made = page.eval_on_selector_all(
            "img[src='x'], b", "els => els.filter(e => e.closest('td')).length"
        )
    finally:
        context.close()
    assert dialogs == [] and made == 0
    assert markup in text and named in text


def test_the_analysts_report_after_a_build_that_stopped_is_one_line(
    mapped_template, tmp_path, monkeypatch
):
    """A run stopped during dbt build leaves racemap's views half rebuilt (the attention view
    gone, say): the analyst's mapping report, opened in JupyterLab, stops at the first cell that
    reads one with the one line racemap status gives, never a traceback."""
    from conftest import database_copy
    from papermill.exceptions import PapermillExecutionError

    from racemap.paths import DEFAULT_REPORTS_DIR

    _db, _result, reports = mapped_template
    with database_copy(mapped_template[0]) as db:
        with db.transaction() as conn, conn.cursor() as cur:
            cur.execute("drop view racemap.races_needing_attention")
        default = DEFAULT_REPORTS_DIR / db.dbname
        shutil.copytree(reports, default, symlinks=True)
        try:
            monkeypatch.setenv("DATABASE_URL", db.url)
            with pytest.raises(PapermillExecutionError) as info:
                _execute_from_notebooks_dir(tmp_path / "stopped.ipynb")
        finally:
            shutil.rmtree(default, ignore_errors=True)
    assert info.value.ename == "RacemapError"
    assert info.value.evalue == (
        "the database is not as racemap's last build left it (relation "
        '"racemap.races_needing_attention" does not exist): run racemap run'
    )
    assert info.value.traceback == [info.value.evalue]


def test_data_docs_escape_the_plain_values_of_every_table_cell():
    """Several columns' unexpected values reach a table cell as a list or a dict (a compound key
    such as race, session, driver and lap): their values are text too. Content blocks in a cell
    render as GX renders them (a string template escapes its own params)."""
    from racemap.checks.data_docs import OfflinePageView

    block = {
        "content_block_type": "table",
        "header_row": ["value", "count"],
        "table": [
            ["<b>text</b>", 1],
            [["<i>race</i>", "race", 7], 2],
            [{"race_id": "<u>id</u>"}, 3],
            [
                {
                    "content_block_type": "string_template",
                    "string_template": {"template": "$x kept", "params": {"x": "<em>p</em>"}},
                },
                4,
            ],
        ],
    }
    html = (
        OfflinePageView()
        .env.get_template("table.j2")
        .render(content_block=block, content_block_id="c", section_id="s")
    )
    for tag in ("<b>", "<i>", "<u>", "<em>"):
        assert tag not in html
    assert "&lt;b&gt;text&lt;/b&gt;" in html and "&lt;i&gt;race&lt;/i&gt;" in html
    assert "&lt;u&gt;id&lt;/u&gt;" in html and "&lt;em&gt;p&lt;/em&gt; kept" in html


def test_the_reports_summary_says_a_dry_run_and_where_a_failed_run_stopped():
    """The mapping report's table of the run says what racemap run printed: a dry run applied
    nothing because it was one; a failed run (read by an analyst's report) where it stopped."""
    from racemap.reporting import report_data

    dry = {"run_id": "r1", "verdict": "ok", "dry_run": True, "updates": 2, "updates_applied": 0}
    table = report_data.summary_table(dry)
    assert table.loc["updates applied", "this run"] == "0 of 2 (dry run)"
    failed = {
        "run_id": "r2",
        "verdict": "failed",
        "stopped_at": "dbt_build",
        "error": "interrupted during dbt_build",
    }
    table = report_data.summary_table(failed)
    assert table.loc["stopped at", "this run"] == "dbt_build"
    assert table.loc["error", "this run"] == "interrupted during dbt_build"


def test_the_dbt_docs_open_from_the_file_system_without_errors(browser, secret_run, tmp_path):
    """dbt's static docs site, as the report set holds it: no request for a file that is not
    there (dbt's page links a favicon by a bundler expression, and its menu icons are SVG
    <use> elements whose href is an Angular expression the browser fetched as it stood)."""
    _db, _result, reports = secret_run
    page = open_page(browser, reports / "dbt-docs" / "index.html", tmp_path / "dbt_docs.png")
    assert page.errors == []
    assert "race_openf1_mapping" in page.text
    assert_not_blank(page.screenshot)
