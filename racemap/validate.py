"""Great Expectations checkpoints over the raw tables, the races table and the mapping.

The file context in ``gx/`` (or ``$RACEMAP_GX_ROOT/gx``) is (re)built by code on every run,
get-or-create, so it can be re-run and reviewed. The connection string is stored as
``${RACEMAP_GX_DATABASE_URL}``: the secret stays in this process's environment. Analytics and
progress bars are off.

Two checkpoints:

- ``raw`` (before ``dbt build``): the OpenF1 tables' keys are unique and not null, every session's
  meeting exists, and every loaded season has rows;
- ``mapping`` (after the apply): both key columns of the races table are unique among the non-null
  values, each mapped race's (meeting, session) is the Grand Prix race session of that meeting,
  the mapping's reasons are the fixed words, and the coverage of each season within OpenF1's
  coverage (``racemap.mapping_coverage``) is at or above the ``coverage_threshold`` var.

Data Docs are rendered self-contained (no CDN: the pages open offline without console errors) and
copied to ``<reports>/validation/``. Great Expectations is imported only here (it takes seconds).
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from .errors import RacemapError
from .paths import PROJECT_DIR
from .settings import RacesTable

DATASOURCE = "racemap_postgres"
URL_VARIABLE = "RACEMAP_GX_DATABASE_URL"
DEFAULT_COVERAGE_THRESHOLD = 1.0
VALIDATION_RESULTS_SHOWN = 30  # the Data Docs index lists the newest validation results only
REASONS = [
    "before_openf1_coverage",
    "no_circuit_mapping",
    "no_meeting",
    "no_race_session",
    "cancelled",
    "ambiguous",
    "conflict",
    "not_yet_run",
]


@dataclass
class ValidationOutcome:
    checkpoint: str
    success: bool
    evaluated: int = 0
    failed: list[str] = field(default_factory=list)
    run_name: str = ""


def gx_root() -> Path:
    """Where the file context lives: the project (``gx/``), or $RACEMAP_GX_ROOT (tests)."""
    return Path(os.environ.get("RACEMAP_GX_ROOT") or PROJECT_DIR)


def coverage_threshold(variables: dict | None) -> float:
    """The ``coverage_threshold`` var (a share of races, 0..1), default 1.0."""
    value = (variables or {}).get("coverage_threshold", DEFAULT_COVERAGE_THRESHOLD)
    try:
        threshold = float(value)
    except (TypeError, ValueError):
        threshold = -1.0
    if not 0.0 <= threshold <= 1.0:
        raise RacemapError(f"--var coverage_threshold={value}: give a share between 0 and 1")
    return threshold


def _site_config() -> dict:
    """The local Data Docs site, rendered by the offline views below."""
    view = {"module_name": "racemap.validate", "class_name": "OfflinePageView"}
    return {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": "uncommitted/data_docs/local_site/",
        },
        "site_index_builder": {
            "class_name": "DefaultSiteIndexBuilder",
            "validation_results_limit": VALIDATION_RESULTS_SHOWN,
            "view": {"module_name": "racemap.validate", "class_name": "OfflineIndexPageView"},
        },
        "site_section_builders": {
            "expectations": {"view": dict(view)},
            "validations": {"view": dict(view)},
            "profiling": "False",
        },
    }


def _context():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="file", project_root_dir=str(gx_root()))
    changed = False
    if context.variables.progress_bars != ProgressBarsConfig(globally=False):
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        changed = True
    if context.variables.analytics_enabled is not False:
        context.variables.analytics_enabled = False
        changed = True
    sites = {"local_site": _site_config()}
    if context.variables.data_docs_sites != sites:
        context.variables.data_docs_sites = sites
        changed = True
    if changed:
        context.variables.save()
        context = gx.get_context(mode="file", project_root_dir=str(gx_root()))
    return gx, context


def _table_asset(datasource, name: str, schema: str, table: str):
    try:
        asset = datasource.get_asset(name)
        if asset.table_name != table or asset.schema_name != schema:
            datasource.delete_asset(name)
            raise LookupError
    except LookupError:
        asset = datasource.add_table_asset(name=name, table_name=table, schema_name=schema)
    try:
        return asset.get_batch_definition("whole_table")
    except (KeyError, LookupError, ValueError):
        return asset.add_batch_definition_whole_table("whole_table")


def _suite(gx, context, name: str, expectations: list):
    suite = gx.ExpectationSuite(name=name, expectations=expectations)
    return context.suites.add_or_update(suite)


def loaded_seasons(db) -> list[int]:
    """Seasons with a successful OpenF1 fetch on record: each must have rows."""
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(
            "select exists (select 1 from information_schema.tables"
            " where table_schema = 'raw' and table_name = 'openf1_loads')"
        )
        if not cur.fetchone()[0]:
            return []
        # A season OpenF1 had nothing for (404 "No results found.", or the snapshot ends
        # before it) is not a loaded season; one that ever answered with records is.
        cur.execute(
            "select distinct season from raw.openf1_loads"
            " where status = 'ok' and rows_received > 0 order by 1"
        )
        return [int(row[0]) for row in cur.fetchall()]


def _suites(gx, races: RacesTable, seasons: list[int], threshold: float) -> dict:
    """name -> (asset name, schema, table, expectations)."""
    E = gx.expectations
    # GX replaces {batch} with "(select ...) as subselect", so name it through a CTE.
    return {
        "raw_openf1_meetings": (
            "raw_openf1_meetings",
            "raw",
            "openf1_meetings",
            [
                E.ExpectTableRowCountToBeBetween(min_value=1),
                E.ExpectColumnValuesToNotBeNull(column="meeting_key"),
                E.ExpectColumnValuesToBeUnique(column="meeting_key"),
                E.ExpectColumnDistinctValuesToContainSet(
                    column="year",
                    value_set=seasons,
                    description=f"every loaded season has meetings: {_seasons(seasons)}",
                ),
            ],
        ),
        "raw_openf1_sessions": (
            "raw_openf1_sessions",
            "raw",
            "openf1_sessions",
            [
                E.ExpectTableRowCountToBeBetween(min_value=1),
                E.ExpectColumnValuesToNotBeNull(column="session_key"),
                E.ExpectColumnValuesToBeUnique(column="session_key"),
                E.ExpectColumnValuesToNotBeNull(column="meeting_key"),
                E.ExpectColumnDistinctValuesToContainSet(
                    column="year",
                    value_set=seasons,
                    description=f"every loaded season has sessions: {_seasons(seasons)}",
                ),
                E.UnexpectedRowsExpectation(
                    description="every session's meeting_key exists in raw.openf1_meetings",
                    unexpected_rows_query=(
                        "with s as (select * from {batch})"
                        " select s.session_key, s.meeting_key from s where not exists"
                        " (select 1 from raw.openf1_meetings m where m.meeting_key = s.meeting_key)"
                    ),
                ),
            ],
        ),
        "races_openf1_keys": (
            "app_races",
            races.schema,
            races.table,
            [
                # Column map expectations skip nulls: unique among the races that hold a key.
                E.ExpectColumnValuesToBeUnique(column="openf1_meeting_key"),
                E.ExpectColumnValuesToBeUnique(column="openf1_session_key"),
                E.UnexpectedRowsExpectation(
                    description=(
                        "the (openf1_meeting_key, openf1_session_key) of every mapped race is the "
                        "Grand Prix race session (session_name 'Race', never a Sprint) of that "
                        "meeting"
                    ),
                    unexpected_rows_query=(
                        "with r as (select * from {batch})"
                        " select r.openf1_meeting_key, r.openf1_session_key from r"
                        " where (r.openf1_meeting_key is not null"
                        " or r.openf1_session_key is not null) and not exists ("
                        " select 1 from raw.openf1_sessions s"
                        " where s.session_key = r.openf1_session_key"
                        " and s.meeting_key = r.openf1_meeting_key"
                        " and lower(trim(s.session_name)) = 'race')"
                    ),
                ),
            ],
        ),
        "race_openf1_mapping": (
            "race_openf1_mapping",
            "racemap",
            "race_openf1_mapping",
            [
                E.ExpectColumnValuesToNotBeNull(column="race_id"),
                E.ExpectColumnValuesToBeUnique(column="race_id"),
                E.ExpectColumnValuesToBeUnique(column="meeting_key"),
                E.ExpectColumnValuesToBeUnique(column="session_key"),
                E.ExpectColumnValuesToBeInSet(column="reason", value_set=REASONS),
                E.ExpectColumnValuesToBeNull(  # the races whose results disagree, by id
                    column="race_id",
                    row_condition=gx.expectations.row_conditions.Column("results_check")
                    == "disagree",
                    description="no race's results disagree with OpenF1's (results_check)",
                ),
            ],
        ),
        "mapping_coverage": (
            "mapping_coverage",
            "racemap",
            "mapping_coverage",
            [
                E.ExpectColumnValuesToNotBeNull(column="season"),
                # coverage is null for a season with no Grand Prix race session loaded.
                E.ExpectColumnValuesToBeBetween(
                    column="coverage",
                    min_value=threshold,
                    max_value=1,
                    description=(
                        f"in each season within OpenF1's coverage, at least {threshold:.0%} of "
                        "the races with a Grand Prix race session at their circuit are mapped "
                        "(var coverage_threshold)"
                    ),
                ),
            ],
        ),
    }


def _seasons(seasons: list[int]) -> str:
    return ", ".join(map(str, seasons)) or "none loaded"


CHECKPOINTS = {
    "raw": ["raw_openf1_meetings", "raw_openf1_sessions"],
    "mapping": ["races_openf1_keys", "race_openf1_mapping", "mapping_coverage"],
}


def _describe(result) -> list[str]:
    """One short phrase per failed expectation: suite, expectation, column, what was found."""
    failed = []
    for run in result.run_results.values():
        suite = run.suite_name
        for er in run.results:
            if er.success:
                continue
            cfg = er.expectation_config
            column = cfg.kwargs.get("column")
            what = cfg.type + (f"({column})" if column else "")
            if cfg.description and (
                cfg.type == "unexpected_rows_expectation" or cfg.kwargs.get("row_condition")
            ):
                what += f" '{cfg.description}'"
            info = er.result or {}
            if "partial_missing_list" in info:
                found = f"missing {info['partial_missing_list']}"
            elif cfg.type == "unexpected_rows_expectation":
                found = f"{info.get('observed_value')} unexpected rows"
            elif info.get("unexpected_count") is not None:
                found = f"{info['unexpected_count']} unexpected"
                sample = info.get("partial_unexpected_list") or []
                if sample and not isinstance(sample[0], dict):
                    found += ": " + ", ".join(map(str, sample[:3]))
            elif "observed_value" in info:
                found = f"observed {info['observed_value']}"
            else:
                found = None
            if er.exception_info and er.exception_info.get("raised_exception"):
                found = "error: " + str(er.exception_info.get("exception_message", ""))[:120]
            failed.append(f"{suite}: {what}" + (f" [{found}]" if found else ""))
    return failed


def run_checkpoint(
    db,
    name: str,
    races: RacesTable,
    reports_dir: Path,
    run_name: str,
    threshold: float = DEFAULT_COVERAGE_THRESHOLD,
    seasons: list[int] | None = None,
) -> ValidationOutcome:
    """Run checkpoint ``raw`` or ``mapping``; Data Docs are rebuilt into reports/validation.

    ``seasons``: those that must have raw rows (default: every season loaded successfully);
    ``threshold``: the least coverage per season (the ``coverage_threshold`` var).
    """
    os.environ[URL_VARIABLE] = db.sqlalchemy_url
    gx, context = _context()
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.core.run_identifier import RunIdentifier

    datasource = context.data_sources.add_or_update_postgres(
        name=DATASOURCE, connection_string="${" + URL_VARIABLE + "}"
    )
    if seasons is None:
        seasons = loaded_seasons(db) if name == "raw" else []
    definitions = []
    suites = _suites(gx, races, sorted(seasons), threshold)
    for suite_name in CHECKPOINTS[name]:
        asset_name, schema, table, expectations = suites[suite_name]
        batch = _table_asset(datasource, asset_name, schema, table)
        suite = _suite(gx, context, suite_name, expectations)
        definitions.append(
            context.validation_definitions.add_or_update(
                gx.ValidationDefinition(name=suite_name, data=batch, suite=suite)
            )
        )
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=name,
            validation_definitions=definitions,
            actions=[UpdateDataDocsAction(name="update_data_docs")],
            result_format={"result_format": "SUMMARY"},
        )
    )
    result = checkpoint.run(run_id=RunIdentifier(run_name=run_name))
    publish_docs(context, reports_dir, rebuild=False)
    evaluated = sum(len(r.results) for r in result.run_results.values())
    return ValidationOutcome(name, bool(result.success), evaluated, _describe(result), run_name)


def publish_docs(context, reports_dir: Path, rebuild: bool = True) -> Path:
    """Copy the context's local Data Docs site to ``<reports>/validation``.

    The checkpoint's UpdateDataDocsAction has rendered its own pages and the index; ``rebuild``
    renders every page again (after a change of the views).
    """
    if rebuild:
        context.build_data_docs()
    site = gx_root() / "gx" / "uncommitted" / "data_docs" / "local_site"
    target = Path(reports_dir) / "validation"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(site, target)
    return target


# -- Data Docs that open offline ---------------------------------------------------------------
# GX's page templates pull jQuery, Bootstrap, bootstrap-table, Vega and Font Awesome from CDNs and
# render the index table in JavaScript: offline, or behind a proxy, the pages show errors and an
# empty index. These views put a few templates first that need nothing from the network: the
# tables are rendered as HTML, the styles are inline, the icons are characters.

_OFFLINE_CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  font-size: 14px; color: #212529; margin: 0; background: #fff; }
a { color: #0b63ce; text-decoration: none; } a:hover { text-decoration: underline; }
.navbar { display: flex; align-items: center; padding: 0 24px; background: #f8f9fa;
  border-bottom: 1px solid #dee2e6; }
.navbar-brand { font-size: 18px; font-weight: 600; }
.breadcrumb { display: inline-flex; list-style: none; margin: 0 0 0 16px; padding: 0; }
.breadcrumb-item + .breadcrumb-item::before { content: "/"; padding: 0 6px; color: #6c757d; }
.container-fluid { padding: 16px 32px; }
.row { display: flex; flex-wrap: wrap; margin: 0 -12px; }
.row > * { padding: 0 12px; box-sizing: border-box; }
.col-12 { width: 100%; } .col-md-2, .col-lg-2 { width: 16.66%; }
.col-md-10, .col-lg-10 { width: 83.33%; } .col-md-6 { width: 50%; } .col-md-4 { width: 33.33%; }
.col-md-8 { width: 66.66%; } .col-md-3 { width: 25%; } .col-md-9 { width: 75%; }
@media (max-width: 900px) { .row > * { width: 100% !important; } }
.card { border: 1px solid #dee2e6; border-radius: 4px; margin-bottom: 16px; }
.card-header { background: #f1f3f5; padding: 8px 12px; border-bottom: 1px solid #dee2e6; }
.card-body { padding: 12px; }
table { border-collapse: collapse; width: 100%; margin-bottom: 12px; }
th, td { border: 1px solid #dee2e6; padding: 6px 8px; text-align: left; vertical-align: top; }
thead th { background: #f1f3f5; }
tr.clickable-row { cursor: pointer; } tr.clickable-row:hover { background: #eef4fc; }
.text-success { color: #198754; } .text-danger { color: #c82333; } .text-muted { color: #6c757d; }
.badge { display: inline-block; padding: 2px 6px; border-radius: 4px; background: #e9ecef;
  font-size: 12px; }
.alert { padding: 8px 12px; border-radius: 4px; background: #fff3cd; }
.nav { list-style: none; padding: 0; margin: 0; } .nav-link { display: block; padding: 3px 4px; }
.d-none { display: none; } .collapse:not(.show) { display: none; }
.show-scrollbars { overflow: auto; } pre, code { font-size: 12px; white-space: pre-wrap; }
.btn { display: inline-block; padding: 3px 8px; border: 1px solid #0b63ce; border-radius: 4px;
  color: #0b63ce; background: #fff; cursor: pointer; margin: 2px; }
.btn input { display: none; }
.fas, .fa { font-style: normal; }
.fa-check-circle::before { content: "\\2714"; } .fa-times::before { content: "\\2716"; }
.fa-times-circle::before { content: "\\2716"; } .fa-exclamation-triangle::before { content: "!"; }
.fa-check::before { content: "\\2714"; }
"""

_HEAD = """
    <meta name="viewport" content="width=device-width, initial-scale=1.0" />
    <meta charset="UTF-8">
    <style>{% include 'data_docs_default_styles.css' %}</style>
    <style>{% include 'racemap_offline.css' %}</style>
    <style>{% include 'data_docs_custom_styles.css' ignore missing %}</style>
    {% include 'favicon.j2' %}
"""

_BODY = """
    {% include 'top_navbar.j2' %}
    <div class="container-fluid">
      <div class="row">
        {% include 'sidebar.j2' %}
        <div class="col-md-10 col-lg-10 col-xs-12">
        {% for section in sections %}
          {% set section_loop = loop -%}
          {% include 'section.j2' %}
        {% endfor %}
        </div>
      </div>
    </div>
"""

_TEMPLATES = {
    "page.j2": '<!DOCTYPE html>\n<html lang="en">\n  <head>\n'
    "    <title>{{ page_title or 'Validation results' }} · racemap Data Docs</title>"
    + _HEAD
    + "  </head>\n  <body>"
    + _BODY
    + "  </body>\n</html>\n",
    "index_page.j2": '<!DOCTYPE html>\n<html lang="en">\n  <head>\n'
    "    <title>racemap validation results · Data Docs</title>"
    + _HEAD
    + "  </head>\n  <body>"
    + _BODY
    + "  </body>\n</html>\n",
    "racemap_offline.css": _OFFLINE_CSS,
    "js_script_imports.j2": "",
    # GX's favicon link is one directory short on validation result pages (4 levels deep).
    "favicon.j2": """
{% set dots = expectation_suite_name.count(".") if expectation_suite_name else 0 -%}
{% if "ValidationResults" in renderer_type or "ProfilingResults" in renderer_type %}
  {% set static_images_dir = ((dots + 4) * "../") + "static/images/" -%}
{% elif "ExpectationSuite" in renderer_type %}
  {% set static_images_dir = ((dots + 1) * "../") + "static/images/" -%}
{% else %}{% set static_images_dir = "./static/images/" -%}{% endif %}
<link rel="shortcut icon" href="{{ static_images_dir + "favicon.ico" }}" type="image/x-icon"/>
""",
    "cloud-footer.j2": "",
    "cta_footer.j2": "",
    "top_navbar.j2": """
{% if expectation_suite_name %}
  {% set dots = expectation_suite_name.count(".") -%}
{% else %}{% set dots = 0 %}{% endif %}
{% if "ValidationResults" in renderer_type or "ProfilingResults" in renderer_type %}
  {% set home_url = ((dots + 4) * "../") + "index.html" -%}
{% elif "ExpectationSuite" in renderer_type %}
  {% set home_url = ((dots + 1) * "../") + "index.html" -%}
{% else %}{% set home_url = "index.html" -%}{% endif %}
<nav class="navbar" style="height: 56px">
  <a class="navbar-brand" href="{{ home_url }}">racemap · validation results</a>
  {% if page_title %}
    <ol class="breadcrumb">
      <li class="breadcrumb-item"><a href="{{ home_url }}">Home</a></li>
      <li class="breadcrumb-item" aria-current="page">{{ page_title }}</li>
    </ol>
  {% endif %}
</nav>
""",
    "page_action_card.j2": """
<script>
  function racemapShowValidations(all) {
    document.querySelectorAll(".hide-succeeded-validation-target, "
        + ".hide-succeeded-validation-target-child").forEach(function (el) {
      var own = el.classList.contains("hide-succeeded-validation-target");
      var target = own ? el : el.parentElement;
      target.style.display = all ? "" : "none";
    });
  }
</script>
<div class="card">
  <div class="card-header"><strong>Show</strong></div>
  <div class="card-body">
    <button class="btn" onclick="racemapShowValidations(true)">all expectations</button>
    <button class="btn" onclick="racemapShowValidations(false)">failed only</button>
  </div>
</div>
""",
    "bootstrap_table.j2": """
{% include 'content_block_header.j2' %}
{% set table_columns = content_block["table_columns"] %}
<table id="{{ content_block_id ~ '-body-table' }}" class="table">
  <thead>
    {% if "title_row" in content_block %}
      <tr><th colspan="{{ table_columns | length }}">
        {{ content_block["title_row"] | render_content_block }}</th></tr>
    {% endif %}
    <tr>{% for column in table_columns %}<th>{{ column.get("title", column.get("field")) }}</th>
    {% endfor %}</tr>
  </thead>
  <tbody>
  {% for row in content_block["table_data"] | render_bootstrap_table_data %}
    {% set link = row.get("_table_row_link_path") %}
    <tr{% if link %} class="clickable-row" onclick="window.location.href='{{ link }}'"{% endif %}>
      {% for column in table_columns %}
        <td>{% if link and loop.first %}<a href="{{ link }}">{{ row.get(column["field"], "") }}</a>
            {% else %}{{ row.get(column["field"], "") }}{% endif %}</td>
      {% endfor %}
    </tr>
  {% endfor %}
  </tbody>
</table>
""",
    "graph.j2": """
{% include 'content_block_header.j2' %}
<p class="text-muted">(chart omitted: these Data Docs are rendered for offline reading)</p>
""",
}


def _default_styles() -> str:
    """GX's default Data Docs styles without their one remote image (a dark-mode logo)."""
    import re
    from importlib.resources import files

    css = (
        files("great_expectations") / "render/view/static/styles/data_docs_default_styles.css"
    ).read_text(encoding="utf-8")
    return re.sub(r"url\(\s*['\"]?https?://[^)]*\)", "none", css)


def _offline_view(base):
    from jinja2 import ChoiceLoader, DictLoader

    class View(base):
        def __init__(self, custom_styles_directory=None, custom_views_directory=None) -> None:
            super().__init__(custom_styles_directory, custom_views_directory)
            templates = {**_TEMPLATES, "data_docs_default_styles.css": _default_styles()}
            self.env.loader = ChoiceLoader([DictLoader(templates), self.env.loader])

    View.__name__ = View.__qualname__ = "Offline" + base.__name__.removeprefix("DefaultJinja")
    return View


def __getattr__(name: str):
    # The views import GX's renderer; build them only when GX instantiates them by name.
    if name in {"OfflinePageView", "OfflineIndexPageView"}:
        from great_expectations.render.view import (
            DefaultJinjaIndexPageView,
            DefaultJinjaPageView,
        )

        base = DefaultJinjaIndexPageView if name == "OfflineIndexPageView" else DefaultJinjaPageView
        view = _offline_view(base)
        globals()[name] = view
        return view
    raise AttributeError(name)
