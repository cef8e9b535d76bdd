"""What the mapping report shows, as DataFrames and a chart; and its export to HTML.

``notebooks/mapping_report.ipynb`` stays thin: it calls these functions. The database comes from
the environment (``DATABASE_URL``, inherited by the papermill kernel); the run's own files
(``summary.json``, ``mapping_updates.csv``) are read from the reports directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path

import pandas as pd

from racemap import verdict as verdicts
from racemap.db import query_dicts
from racemap.errors import RacemapError, known_database_error
from racemap.reporting.reports import UPDATE_COLUMNS

COVERAGE_COLUMNS = [
    "season",
    "races",
    "races_expected",
    "mapped",
    "unmapped_expected",
    "coverage",
]
ATTENTION_COLUMNS = ["race_id", "season", "race_name", "kind", "reason", "detail", "action"]


@contextlib.contextmanager
def _as_built():
    """A relation or column of racemap's last build that is missing (a run stopped during its
    build, a table dropped since) is the one line ``racemap status`` gives, in the notebook
    too, not PostgreSQL's traceback."""
    try:
        yield
    except Exception as exc:
        if (error := known_database_error(exc)) is not None:
            raise error from None
        raise


def _frame(conn, query: str, columns: list[str], params=()) -> pd.DataFrame:
    with _as_built():
        return pd.DataFrame(query_dicts(conn, query, params), columns=columns)


def coverage_by_season(conn) -> pd.DataFrame:
    """``racemap.mapping_coverage``: one row per season within OpenF1's coverage."""
    frame = _frame(
        conn,
        "select " + ", ".join(COVERAGE_COLUMNS) + " from racemap.mapping_coverage order by season",
        COVERAGE_COLUMNS,
    )
    frame["coverage"] = pd.to_numeric(frame["coverage"], errors="coerce").astype(float)
    return frame


def needing_attention(conn) -> pd.DataFrame:
    """The races that need a person now, each with what to do (racemap.races_needing_attention)."""
    from racemap.reporting.reports import attention_rows

    with _as_built():
        return attention_frame(attention_rows(conn))


def attention_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows of racemap.races_needing_attention as a table; a season is a year (2024, not
    2024.000000 when another row has none)."""
    frame = pd.DataFrame(rows, columns=ATTENTION_COLUMNS)
    frame["season"] = pd.to_numeric(frame["season"], errors="coerce").astype("Int64")
    return frame


def verdict_line(summary: dict, attention: pd.DataFrame) -> str:
    """The run's verdict in words, for the top of the report."""
    verdict = summary.get("verdict") or verdicts.decide(attention=attention.itertuples())
    if verdict == verdicts.OK:
        return "**Verdict: ok.** No race needs a person."
    if verdict == verdicts.ATTENTION:
        return (
            f"**Verdict: attention.** {len(attention)} race(s) need a person: each is listed "
            "below with what to do."
        )
    return f"**Verdict: failed.** {summary.get('error') or 'see the validations below'}"


def changes_since_last_run(reports_dir: Path) -> tuple[str, pd.DataFrame]:
    """What changed since the previous run on this database (``summary.json``'s ``changes``,
    one row each in ``changes.csv``), and the freshness of the raw data, for the report."""
    from racemap.reporting.changes import CHANGE_COLUMNS, describe

    summary = run_summary(reports_dir)
    changes = summary.get("changes")
    line = describe(changes) if changes is not None else "changes not computed: the run stopped"
    line = line[0].upper() + line[1:] + "."
    fresh = summary.get("freshness") or {}
    if fresh.get("in_season"):
        states = sorted({e["status"] for e in fresh.get("endpoints", {}).values()})
        line += (
            f" Raw OpenF1 data, season {fresh['season']} running: {', '.join(states) or '-'}"
            f" (warn after {fresh['warn_after_days']:g} days, error after"
            f" {fresh['error_after_days']:g})."
        )
    elif fresh:
        line += " Off-season: no freshness window applies to the raw OpenF1 data."
    path = Path(reports_dir) / "changes.csv"
    if not path.is_file():
        return line, pd.DataFrame(columns=CHANGE_COLUMNS)
    return line, pd.read_csv(path, dtype=str, keep_default_na=False)


def unmapped_by_reason(conn) -> pd.DataFrame:
    """Unmapped races per reason: how many, which seasons, a few of them."""
    columns = ["reason", "races", "first_season", "last_season", "examples"]
    return _frame(
        conn,
        """
        select reason, count(*) as races, min(year) as first_season, max(year) as last_season,
            string_agg(coalesce(name, race_id) || ' ' || coalesce(cast(year as text), ''), '; '
                order by year desc, race_start_at desc)
                filter (where year >= (select coalesce(min(season), 0)
                                       from racemap.mapping_coverage)) as examples
        from racemap.unmapped_races
        group by reason
        order by count(*) desc, reason
        """,
        columns,
    ).fillna({"examples": ""})


def unmapped_in_coverage(conn) -> pd.DataFrame:
    """Each unmapped race of a season within OpenF1's coverage, grouped by reason."""
    columns = ["reason", "year", "race_id", "name", "detail", "circuit_id", "candidate_count"]
    return _frame(
        conn,
        "select reason, year, race_id, coalesce(name, race_id) as name, detail, circuit_id,"
        " candidate_count"
        " from racemap.unmapped_races"
        " where year >= (select coalesce(min(season), 0) from racemap.mapping_coverage)"
        " order by reason, year, race_start_at",
        columns,
    )


def conflicts_in_mapping(conn) -> pd.DataFrame:
    """Races the mapping leaves unmapped because another race holds their keys."""
    columns = ["race_id", "year", "name", "circuit_id"]
    return _frame(
        conn,
        "select race_id, year, coalesce(name, race_id) as name, circuit_id"
        " from racemap.unmapped_races"
        " where reason = 'conflict' order by year, race_start_at",
        columns,
    )


RESULTS_BY_SEASON_COLUMNS = ["season", "mapped", "agree", "disagree", "no_results"]


def verified_by_results(conn) -> pd.DataFrame:
    """The "verified by results" view: per season, the mapped races whose results agree with
    OpenF1's, disagree, or cannot be checked yet (``race_openf1_mapping.results_check``)."""
    return _frame(
        conn,
        "select season, count(*) as mapped,"
        " count(*) filter (where results_check = 'agree') as agree,"
        " count(*) filter (where results_check = 'disagree') as disagree,"
        " count(*) filter (where results_check = 'no_results') as no_results"
        " from racemap.race_openf1_mapping where status = 'mapped'"
        " group by season order by season",
        RESULTS_BY_SEASON_COLUMNS,
    )


def results_to_review(conn) -> pd.DataFrame:
    """Mapped races whose results disagree (first: they need a person) or are not checked yet,
    with the evidence (``results_detail``: the first differing positions, or which side has
    none)."""
    columns = [
        "results_check",
        "season",
        "race_id",
        "race_name",
        "meeting_key",
        "session_key",
        "results_detail",
    ]
    return _frame(
        conn,
        "select " + ", ".join(columns) + " from racemap.race_openf1_mapping"
        " where status = 'mapped' and results_check <> 'agree'"
        " order by results_check = 'disagree' desc, season, race_start_at",
        columns,
    )


def run_updates(reports_dir: Path) -> pd.DataFrame:
    """The key changes this run computed (``mapping_updates.csv``), each with its status."""
    path = Path(reports_dir) / "mapping_updates.csv"
    if not path.is_file():
        return pd.DataFrame(columns=UPDATE_COLUMNS)
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def update_conflicts(updates: pd.DataFrame) -> pd.DataFrame:
    """This run's updates that were not applied because another race holds the key."""
    return updates[updates["status"] == "conflict"].reset_index(drop=True)


def mapped_without_keys(conn) -> tuple[str, pd.DataFrame]:
    """The races mapped but holding no keys, by why (``racemap status``'s groups): a line saying
    what the next run does, and the groups (why, the run that wrote last, races)."""
    from racemap.reporting.status import WHY_WORDS, unapplied_why

    with _as_built():
        groups = unapplied_why(conn)
    frame = pd.DataFrame(
        [
            {
                "races": g["races"],
                "why": WHY_WORDS[g["why"]].format(run_id=g["run_id"]),
            }
            for g in groups
        ],
        columns=["races", "why"],
    )
    total = int(frame["races"].sum()) if not frame.empty else 0
    if not total:
        return "_Every mapped race holds its keys._", frame
    return (
        f"**{total} mapped race(s) hold no keys**: the next `racemap run` (without `--dry-run`) "
        "applies their mapping.",
        frame,
    )


def race_pages_line(reports_dir: Path) -> str:
    """What the report set holds of ``racemap sync``'s race pages, linking their index (a
    relative link: the index sits beside the report)."""
    from racemap.reporting import race_page

    pages = race_page.published_pages(reports_dir)
    if not pages or not (Path(reports_dir) / race_page.INDEX).exists():
        return "_No race pages yet: `racemap sync` renders one for each synced session._"
    counted = race_page.count_pages(pages, "race page")
    return f"{counted}, from `racemap sync`: [{race_page.INDEX}]({race_page.INDEX})"


# The mapping report's cell that shows race_pages_line (notebooks/mapping_report.py).
RACE_PAGES_TAG = "race-pages"


def refresh_race_pages_line(reports_dir: Path) -> bool:
    """After ``racemap sync`` rendered race pages into a report set it carried over from a run:
    the run's mapping report (its executed notebook and ``mapping_report.html``) says again, in
    its cell tagged ``race-pages``, how many pages the set holds now, instead of what the set held
    when the run ended (a first sync's set would otherwise say "No race pages yet" beside its
    pages). False when the set holds no mapping report (a failed run's) or no such cell."""
    import nbformat

    from racemap.reporting.notebooks import export_html

    reports_dir = Path(reports_dir)
    executed = reports_dir / "notebooks" / "mapping_report.ipynb"
    html = reports_dir / "mapping_report.html"
    if not (executed.is_file() and html.is_file()):
        return False
    notebook = nbformat.read(str(executed), as_version=4)
    cells = [
        cell
        for cell in notebook.cells
        if cell.cell_type == "code"
        and (
            RACE_PAGES_TAG in cell.metadata.get("tags", [])
            or "race_pages_line(" in cell.source  # a report of a release before the tag
        )
    ]
    if not cells:
        return False
    cells[-1].outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={
                "text/markdown": race_pages_line(reports_dir),
                "text/plain": "<IPython.core.display.Markdown object>",
            },
        )
    ]
    nbformat.write(notebook, str(executed))
    export_html(executed, html)
    return True


def table(frame: pd.DataFrame, formats: dict | None = None):
    """A DataFrame for reading: no index, text left-aligned, every value HTML-escaped (race
    names and ids come from the application's tables: user input), and the same rows as plain
    text for a reader of the notebook's text. The same data gives the same output: the id its
    CSS is scoped by comes from its content, not pandas' random one (and a Styler's own plain
    text is its memory address). ``formats`` (column: format string) are applied once, for both.
    """
    formatted = frame.assign(
        **{
            column: [format_.format(v) if pd.notna(v) else None for v in frame[column]]
            for column, format_ in (formats or {}).items()
        }
    )
    text = formatted.to_string(index=False, na_rep="-")
    styled = (
        formatted.style.set_uuid(hashlib.sha256(text.encode()).hexdigest()[:10])
        .hide(axis="index")
        .format(na_rep="-", escape="html")
        .set_properties(**{"text-align": "left"})
        .set_table_styles([{"selector": "th", "props": [("text-align", "left")]}])
    )
    return Table(styled.to_html(), text)


class Table:
    """A report's table as a notebook shows it: ``data`` the HTML, ``text`` the plain text."""

    def __init__(self, data: str, text: str):
        self.data, self.text = data, text

    def _repr_html_(self) -> str:
        return self.data

    def __repr__(self) -> str:
        return self.text


def line_and_table(line: str, frame: pd.DataFrame) -> list:
    """What a report section shows: its line (Markdown), then ``frame`` as a table unless it is
    empty (``display(*line_and_table(...))``)."""
    from IPython.display import Markdown

    return [Markdown(line)] if frame.empty else [Markdown(line), table(frame)]


def table_or_note(frame: pd.DataFrame, note: str):
    """``frame`` as a table, or ``note`` (Markdown) where it is empty."""
    from IPython.display import Markdown

    return Markdown(note) if frame.empty else table(frame)


class NoRunYet(RacemapError):
    """The notebook opened before any run on its database: one plain line, no traceback (as
    every RacemapError in a notebook), and the cells after it do not run."""


def find_reports(reports_dir: str | Path | None = None) -> Path:
    """The run's reports for the notebook: ``reports_dir`` when given (``racemap run`` passes its
    own), else the project's reports of this database (``DATABASE_URL``, else the embedded
    one), from any working directory. NoRunYet when no run has written a summary there."""
    from racemap.reporting.reports import database_reports_dir
    from racemap.settings import load_environment

    found = (
        Path(reports_dir) if reports_dir else database_reports_dir(load_environment().database_url)
    )
    if not (found / "summary.json").is_file():
        raise NoRunYet(
            f"No racemap run yet: {found} holds no summary.json. Run `racemap run` (or "
            "`make run`) for this database, then run this notebook again."
        )
    return found


def run_summary(reports_dir: Path) -> dict:
    path = Path(reports_dir) / "summary.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


SUMMARY_HEADER = "this run"  # above the run id, the verdict and the counts


def summary_table(summary: dict) -> pd.DataFrame:
    """The run's counts as a two-column table (the same figures ``racemap run`` prints)."""
    if not summary:
        return pd.DataFrame(columns=["", SUMMARY_HEADER])
    validations = summary.get("validations", {})
    stopped = [
        (label, summary[key])
        for label, key in (("stopped at", "stopped_at"), ("error", "error"))
        if summary.get(key)
    ]
    updates = f"{summary.get('updates_applied')} of {summary.get('updates')}" + (
        " (dry run)" if summary.get("dry_run") else ""
    )
    rows = [
        ("run", summary.get("run_id", "")),
        ("verdict", summary.get("verdict", "")),
        *stopped,
        ("races needing attention", len(summary.get("attention") or [])),
        ("races", summary.get("races")),
        ("mapped", summary.get("mapped")),
        ("unmapped", summary.get("unmapped")),
        *[
            (f"unmapped: {reason}", n)
            for reason, n in summary.get("unmapped_by_reason", {}).items()
        ],
        ("updates applied", updates),
        ("updates in conflict", summary.get("updates_conflicting")),
        (
            "validations",
            f"{validations.get('passed')} passed, {validations.get('failed')} failed",
        ),
        ("OpenF1 requests", summary.get("openf1", {}).get("requests")),
    ]
    return pd.DataFrame(rows, columns=["", SUMMARY_HEADER]).set_index("")


def coverage_chart(coverage: pd.DataFrame, threshold: float = 1.0):
    """Bars: the share of the races OpenF1 should know that are mapped, per season.

    A plain matplotlib Figure (no pyplot state): show it with :func:`png`.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.6), dpi=100)
    ax = fig.subplots()
    seasons = [str(s) for s in coverage["season"]]
    shares = coverage["coverage"].fillna(0.0)
    colors = ["#2e7d32" if c >= threshold else "#c62828" for c in shares]
    bars = ax.bar(seasons, shares * 100, color=colors, width=0.6)
    for bar, (_, row) in zip(bars, coverage.iterrows(), strict=True):
        label = (
            f"{int(row['races_expected']) - int(row['unmapped_expected'])}"
            f"/{int(row['races_expected'])}"
            if row["races_expected"]
            else "no data"
        )
        ax.annotate(
            label,
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=9,
            xytext=(0, 3),
            textcoords="offset points",
        )
    ax.axhline(threshold * 100, color="#555", linestyle="--", linewidth=1)
    ax.text(
        len(seasons) - 0.5,
        threshold * 100,
        f"threshold {threshold:.0%}",
        va="bottom",
        ha="right",
        fontsize=8,
        color="#555",
    )
    ax.set_ylim(0, 115)
    ax.set_ylabel("mapped (%)")
    ax.set_xlabel("season")
    ax.set_title("Mapping coverage: races of the loaded seasons OpenF1 should know")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def png(fig) -> bytes:
    """The figure as PNG bytes, for ``IPython.display.Image(png, metadata={"alt": ...})``."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
