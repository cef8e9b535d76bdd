"""The analyst's race page: the race data marts of one race's session as tables and charts.

notebooks/race_session.ipynb calls these (a thin notebook); :func:`render` executes it with
papermill into ``<reports>/races/<race_id>.ipynb`` (a sprint's page into
``races/sprint/<race_id>.ipynb``: :func:`page_path`) and exports it to HTML beside it (charts
embedded as images, every value HTML-escaped by pandas and nbconvert), offline.
Each reader returns an empty frame when the race has no race data (no sync yet).
:func:`write_index` lists a report set's pages in ``race_pages.html``.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from datetime import UTC
from itertools import cycle
from pathlib import Path

import pandas as pd

from racemap.errors import UsageError
from racemap.paths import NOTEBOOKS_DIR
from racemap.reporting import plural
from racemap.settings import RacesTable

NOTEBOOK = "race_session"
INDEX = "race_pages.html"  # the report set's list of its race pages, beside mapping_report.html
# What lays a page out: its notebook and this module (the readers, tables and charts).
PAGE_SOURCES = (NOTEBOOKS_DIR / f"{NOTEBOOK}.ipynb", Path(__file__))
# race_pit_stops' durations the page shows, and their headings.
PIT_DURATIONS = {"pit_duration": "in the pit lane (s)", "stop_duration": "stationary (s)"}
COMPOUND_COLOURS = {
    "SOFT": "#da291c",
    "MEDIUM": "#ffd12e",
    "HARD": "#c8c8c8",
    "INTERMEDIATE": "#43b02a",
    "WET": "#0067ad",
}
UNKNOWN_COMPOUND_COLOUR = "#888888"
TEAM_COLOUR = re.compile(r"[0-9A-Fa-f]{6}")  # as OpenF1 sends it: 3671C6, no '#'
TEAMMATE_STYLES = ("-", "--", ":", "-.")  # a team's first car solid, its second dashed
QUALIFYING_PARTS = ("q1", "q2", "q3")  # race_classification's q1_seconds ...


def sync_command(race_id, session_kind: str) -> str:
    """The sync that loads a page's race data: a plain ``racemap sync`` loads the race and
    sprint sessions only, so a qualifying page without data names its kind."""
    return f"racemap sync --race-id {race_id} --sessions {session_kind}"


def choose(drivers, *frames: pd.DataFrame, sync: str = "racemap sync") -> list[str]:
    """``drivers`` (acronyms or car numbers: ``["VER", 4]``; as papermill's ``-p`` gives one,
    also a single ``NOR`` or ``44`` or a text ``"NOR, PIA"``) as :func:`only` matches them,
    each checked against the rows of ``frames`` (the session's data): a driver none of them
    has is an error naming those they have, so a typo is not a chart with a line missing
    (``sync``: what to run when they have none, :func:`sync_command`)."""
    if isinstance(drivers, str):
        drivers = re.split(r"[\s,]+", drivers)
    elif not isinstance(drivers, list | tuple | set):
        drivers = [] if drivers is None else [drivers]
    wanted = [str(d).strip().upper() for d in drivers if str(d).strip()]
    rows = pd.concat([f[["driver_number", "name_acronym"]] for f in frames])
    missing = [d for d in wanted if only(rows, [d]).empty]
    if missing:
        labels = [label for label, _rows in _by_driver(rows)]
        raise UsageError(
            f"no driver {', '.join(missing)} in this session's race data: choose among "
            f"{', '.join(labels) or f'none (no race data: run {sync})'}"
        )
    return wanted


def only(frame: pd.DataFrame, drivers: list[str]) -> pd.DataFrame:
    """The rows of ``frame`` of ``drivers`` (from :func:`choose`); every row when empty."""
    if not drivers:
        return frame
    acronyms = frame["name_acronym"].astype("string").fillna("").str.upper()
    return frame[acronyms.isin(drivers) | frame["driver_number"].astype(str).isin(drivers)]


def _built(cur, table: str) -> bool:
    """Whether the mart racemap.<table> exists (a database no sync has built has none)."""
    cur.execute("select to_regclass(%s) is not null", (f"racemap.{table}",))
    return cur.fetchone()[0]


def _read(conn, table: str, columns: str, race_id: str, kind: str, order: str) -> pd.DataFrame:
    """``columns`` of racemap.<table> for the race's session (a fixed table name, values bound)."""
    with conn.cursor() as cur:
        if not _built(cur, table):
            return pd.DataFrame(columns=[c.strip() for c in columns.split(",")])
        cur.execute(
            f"select {columns} from racemap.{table}"  # noqa: S608 (names are constants)
            f" where race_id = %s and session_kind = %s order by {order}",
            (str(race_id), kind),
        )
        names = [d.name for d in cur.description]
        frame = pd.DataFrame(cur.fetchall(), columns=names)
    # Times in UTC, as the charts' axes say: psycopg2 gives them in the database's TimeZone
    # (America/Los_Angeles: -07:00), which pandas and matplotlib would draw them in.
    for name in ("recorded_at", "pit_at"):
        if name in frame.columns:
            frame[name] = pd.to_datetime(frame[name], utc=True)
    return frame


# What the page reads of each mart: (table, columns, order). One entry per mart.
MARTS = {
    "laps": (
        "race_laps",
        "driver_id, driver_number, name_acronym, team_colour, lap_number, lap_duration,"
        " is_pit_out_lap",
        "driver_number, lap_number",
    ),
    "stints": (
        "race_stints",
        "driver_id, driver_number, name_acronym, stint_number, compound, lap_start, lap_end,"
        " tyre_age_at_start",
        "driver_number, stint_number",
    ),
    "pit_stops": (
        "race_pit_stops",
        "driver_id, driver_number, name_acronym, lap_number, pit_duration, stop_duration",
        "pit_at, driver_number",
    ),
    "positions": (
        "race_positions",
        "driver_id, driver_number, name_acronym, team_colour, recorded_at, position",
        "recorded_at, driver_number",
    ),
    "classification": (
        "race_classification",
        "driver_id, driver_number, name_acronym, position, number_of_laps, points,"
        " duration_seconds, gap_to_leader_seconds, gap_to_leader_laps, q1_seconds, q2_seconds,"
        " q3_seconds, result_status",
        "position nulls last, number_of_laps desc nulls last, driver_number",
    ),
    "weather": (
        "race_weather",
        "recorded_at, air_temperature, track_temperature, humidity, rainfall, wind_speed",
        "recorded_at",
    ),
}


def shown_digests(conn, race_ids, kind: str = "race") -> dict[str, str]:
    """Per race of ``race_ids``, a digest of every row its page shows of the marts (MARTS: the
    same columns, in the page's order), the application's driver ids included; a race with no
    row in any mart is left out. A page showing another digest shows other data."""
    parts: dict[str, list[str]] = {}
    with conn.cursor() as cur:
        for table, columns, order in MARTS.values():
            if not _built(cur, table):
                continue
            # The page's order, ties broken by the row itself: the same rows, the same digest.
            rows = (
                f"select race_id, ({columns}) as shown, row_number() over"  # noqa: S608
                f" (partition by race_id order by {order}, ({columns})::text) as n"
                f" from racemap.{table} where race_id = any(%s) and session_kind = %s"
            )
            cur.execute(
                "select race_id, md5(string_agg(shown::text, E'\\n' order by n))"
                f" from ({rows}) t group by race_id",
                ([str(r) for r in race_ids], kind),
            )
            for race_id, digest in cur.fetchall():
                parts.setdefault(race_id, []).append(f"{table}:{digest}")
    return {
        race_id: hashlib.sha256("\n".join(found).encode()).hexdigest()[:16]
        for race_id, found in parts.items()
    }


def page_code_version(sources=PAGE_SOURCES) -> str:
    """A digest of the code that lays a page out (``sources``: the notebook and this module): a
    page another release rendered is another version, rendered again by the next sync."""
    digest = hashlib.sha256()
    for path in sources:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:12]


def read(conn, mart: str, race_id, kind: str = "race") -> pd.DataFrame:
    """What the page shows of ``mart`` (a key of MARTS) for the race's session."""
    table, columns, order = MARTS[mart]
    return _read(conn, table, columns, race_id, kind, order)


def _label(frame: pd.DataFrame) -> pd.Series:
    """A driver's label: the acronym, else the car number."""
    return frame["name_acronym"].fillna(frame["driver_number"].astype(str))


def _by_driver(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(label, rows) per driver for a chart's lines and legend: by acronym, then the cars
    without one by number (2 before 10, not after 18)."""

    def order(group):
        label, rows = group
        numbered = rows["name_acronym"].isna().all()
        return (numbered, "" if numbered else label, rows["driver_number"].min())

    return sorted(frame.assign(label=_label(frame)).groupby("label", sort=False), key=order)


def _line_styles(drivers: list[tuple[str, pd.DataFrame]]) -> dict[str, dict]:
    """Per label of ``drivers`` (from _by_driver), the colour and style of its line: the team's
    colour (OpenF1's ``team_colour``, when drivers was synced), the team's first car in that
    order solid and its second dashed; a driver without a readable colour takes the next of
    tab20's 20 colours."""
    from matplotlib import colormaps

    spare = cycle(colormaps["tab20"].colors)
    cars_of_team: Counter = Counter()
    styles = {}
    for label, rows in drivers:
        colour = next((str(c) for c in rows.get("team_colour", ()) if pd.notna(c)), "")
        if TEAM_COLOUR.fullmatch(colour):
            team = colour.upper()
            style = TEAMMATE_STYLES[cars_of_team[team] % len(TEAMMATE_STYLES)]
            cars_of_team[team] += 1
            styles[label] = {"color": f"#{team}", "linestyle": style}
        else:
            styles[label] = {"color": next(spare), "linestyle": "-"}
    return styles


def _figure(title: str, width: float = 10, height: float = 5):
    """A matplotlib Figure outside pyplot: nothing is shown twice, nothing is left open. A line
    drawn without a colour of its own (the weather's) takes the next of tab20's; the drivers'
    lines take theirs from _line_styles."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    ax = fig.subplots()
    ax.set_prop_cycle(color=colormaps["tab20"].colors)
    ax.set_title(title)
    return fig, ax


def nothing_recorded(what: str):
    """The line a section shows when the session has no ``what`` (nothing synced, or nothing
    OpenF1 recorded), not a heading over nothing."""
    from IPython.display import Markdown

    return Markdown(f"No {what} recorded for this session.")


def chart(frame: pd.DataFrame, draw, alt: str, what: str, **options):
    """``draw(frame, **options)`` as an embedded PNG for the page, with its alt text; when
    ``frame`` is empty, :func:`nothing_recorded` of ``what``."""
    from IPython.display import Image

    from racemap.reporting.report_data import png

    if frame.empty:
        return nothing_recorded(what)
    return Image(png(draw(frame, **options)), metadata={"alt": alt})


def lap_time_chart(frame: pd.DataFrame):
    """Lap time (s) by lap, one line per driver (_line_styles: in team colours); untimed laps
    and pit-out laps left out."""
    fig, ax = _figure("Lap times by driver")
    timed = frame[frame["lap_duration"].notna() & ~frame["is_pit_out_lap"].astype(bool)]
    drivers = _by_driver(timed)
    styles = _line_styles(drivers)
    for label, rows in drivers:
        ax.plot(
            rows["lap_number"], rows["lap_duration"], linewidth=0.8, label=label, **styles[label]
        )
    ax.set_xlabel("lap")
    ax.set_ylabel("lap time (s)")
    if not timed.empty:  # the slowest laps (safety car, pit in) would flatten the rest
        ax.set_ylim(timed["lap_duration"].min() - 1, timed["lap_duration"].quantile(0.95) + 2)
        ax.legend(ncol=2, fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def finishing_order(positions: pd.DataFrame, classification: pd.DataFrame | None = None):
    """Each car's place at the end of the session, by car number, and where it comes from:
    OpenF1's classification when the session has one (``classification``: the classified cars
    by position, then the others by laps completed, most first), else each car's position in
    its last row of ``positions`` (where it was when the recording ended or it stopped)."""
    if classification is not None and not classification.empty:
        ranked = classification.sort_values(
            ["position", "number_of_laps", "driver_number"],
            ascending=[True, False, True],
            na_position="last",
        )
        return {int(n): place for place, n in enumerate(ranked["driver_number"], 1)}, "result"
    if positions is None or positions.empty:
        return {}, None
    last = positions.dropna(subset=["position"]).sort_values("recorded_at")
    last = last.groupby("driver_number")["position"].last()
    return {int(number): int(position) for number, position in last.items()}, "positions"


def stint_chart(
    frame: pd.DataFrame,
    positions: pd.DataFrame | None = None,
    classification: pd.DataFrame | None = None,
):
    """One bar per stint, from its first to its last lap, coloured by compound (a legend names
    the compounds shown). Drivers top to bottom in the session's result (``classification``),
    else in their order at the end of the recorded ``positions`` (finishing_order), when that
    places every car of the chart; else (neither, or a car with none: a recording that starts
    after the start leaves out a car that never changed place) in the legends' order."""
    from matplotlib.patches import Patch

    fig, ax = _figure("Tyre stints", height=6)
    known = frame[frame["lap_start"].notna() & frame["lap_end"].notna()]
    at_end, source = finishing_order(positions, classification)
    placed = bool(at_end) and all(int(n) in at_end for n in known["driver_number"].unique())
    if placed:
        numbers = sorted(known["driver_number"].unique(), key=lambda n: (at_end[int(n)], n))
        drivers = [(_label(known[known["driver_number"] == n]).iloc[0], [n]) for n in numbers]
    else:
        drivers = [(label, rows["driver_number"].unique()) for label, rows in _by_driver(known)]
    rows_of = {number: i for i, (_label_, numbers) in enumerate(drivers) for number in numbers}
    for _index, row in known.iterrows():
        ax.barh(
            rows_of[row["driver_number"]],
            row["lap_end"] - row["lap_start"] + 1,
            left=row["lap_start"] - 0.5,
            color=COMPOUND_COLOURS.get(row["compound"], UNKNOWN_COMPOUND_COLOUR),
            edgecolor="black",
            linewidth=0.5,
        )
    ax.set_yticks(range(len(drivers)), [label for label, _numbers in drivers])
    ax.invert_yaxis()
    ax.set_xlabel("lap")
    ylabel = {"result": "result order", "positions": "order at the end of the session"}
    ax.set_ylabel(ylabel[source] if placed else "driver")
    shown = set(known["compound"].dropna())
    legend = [(name, colour) for name, colour in COMPOUND_COLOURS.items() if name in shown]
    if known["compound"].isna().any() or shown - set(COMPOUND_COLOURS):
        legend.append(("other or not known", UNKNOWN_COMPOUND_COLOUR))
    if legend:
        ax.legend(
            handles=[Patch(facecolor=c, edgecolor="black", label=n.lower()) for n, c in legend],
            fontsize="small",
            loc="upper left",
            bbox_to_anchor=(1.0, 1.0),
        )
    fig.tight_layout()
    return fig


def _race_time(seconds) -> str:
    """A time as F1 writes it: 1:40:52.571, 32:04.660 under an hour."""
    minutes, rest = divmod(float(seconds), 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{rest:06.3f}" if hours else f"{minutes}:{rest:06.3f}"


def _time_or_gap(row) -> str:
    """The winner's time, a finisher's gap (+20.945), a lapped car's laps (+1 lap); else ''."""
    if pd.notna(row["gap_to_leader_seconds"]) and row["gap_to_leader_seconds"] > 0:
        return f"+{float(row['gap_to_leader_seconds']):.3f}"
    if pd.notna(row["duration_seconds"]):
        return _race_time(row["duration_seconds"])
    if pd.notna(row["gap_to_leader_laps"]):
        laps = int(row["gap_to_leader_laps"])
        return f"+{laps} lap" + ("s" if laps > 1 else "")
    return ""


def _text(column: pd.Series, to_text=lambda v: str(int(v))) -> pd.Series:
    """``column`` as the text a table shows, ``to_text`` of each value (by default a whole
    number: 1, not 1.000000); a missing value stays missing (shown as '-')."""
    return pd.Series(
        [to_text(v) if pd.notna(v) else None for v in column], index=column.index, dtype="str"
    )


def _driver_columns(frame: pd.DataFrame) -> dict[str, pd.Series]:
    """A table's columns naming the driver of each row: the acronym (else the car number), the
    car, and the application's driver id (empty when its results do not link the car)."""
    return {"driver": _label(frame), "car": frame["driver_number"], "driver_id": frame["driver_id"]}


def classification_table(frame: pd.DataFrame):
    """OpenF1's result of the session as a table (report_data.table: escaped, no index): the
    classified cars by position, then the others by laps completed; the winner's time and the
    others' gaps, or a qualifying's best lap in each part (Q1, Q2, Q3); points; what became of
    each car (``result_status``; in a qualifying, only a car that did not set its times
    normally). A line when the session has no result (racemap run loads
    them)."""
    from racemap.reporting.report_data import table

    if frame.empty:
        return nothing_recorded("result")
    shown = pd.DataFrame(
        {
            "position": _text(frame["position"]),
            **_driver_columns(frame),
            "laps": _text(frame["number_of_laps"]),
        }
    )
    parts = [p for p in QUALIFYING_PARTS if frame[f"{p}_seconds"].notna().any()]
    for part in parts:
        shown[part.upper()] = _text(frame[f"{part}_seconds"], _race_time)
    if not parts:
        shown["time or gap"] = frame.apply(_time_or_gap, axis=1)
    shown["points"] = _text(frame["points"], lambda p: f"{float(p):g}")
    status = frame["result_status"].str.replace("_", " ")
    # In a qualifying every car that set a time "finished": only the exceptions are news.
    shown["status"] = status.mask(status.eq("finished")) if parts else status
    return table(shown)


def pit_stop_table(frame: pd.DataFrame):
    """The pit stops in the order they were made, as a table (report_data.table: escaped, no
    index): the lap, the driver (acronym, else car number), the car, the application's driver id
    (empty when its results do not link the car) and the durations to a tenth of a second (a
    duration OpenF1 left empty for the whole session, ``stop_duration`` before 2025, is left
    out); a line when there are none."""
    from racemap.reporting.report_data import table

    if frame.empty:
        return nothing_recorded("pit stops")
    shown = pd.DataFrame({"lap": _text(frame["lap_number"]), **_driver_columns(frame)})
    for column, heading in PIT_DURATIONS.items():
        if column in frame and frame[column].notna().any():
            shown[heading] = frame[column].astype(float)
    return table(shown, {h: "{:.1f}" for h in PIT_DURATIONS.values() if h in shown})


def position_chart(frame: pd.DataFrame):
    """Each driver's position over the session (a step from each change, held to the session's
    last change), P1 at the top; one line per driver in team colours (_line_styles)."""
    fig, ax = _figure("Positions over the session")
    drivers = _by_driver(frame)
    styles = _line_styles(drivers)
    end = frame["recorded_at"].max()
    for label, rows in drivers:
        # A position holds until the next change: each line runs on to the last change of all.
        ax.step(
            [*rows["recorded_at"], end],
            [*rows["position"], rows["position"].iloc[-1]],
            where="post",
            linewidth=0.8,
            label=label,
            **styles[label],
        )
    if frame["position"].notna().any():
        ax.set_yticks(range(1, int(frame["position"].max()) + 1))
    ax.invert_yaxis()
    ax.set_ylabel("position")
    ax.set_xlabel("time (UTC)")
    if not frame.empty:
        ax.legend(ncol=2, fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def weather_chart(frame: pd.DataFrame):
    """Air and track temperature over the session; rain shaded."""
    fig, ax = _figure("Weather", height=3.5)
    ax.plot(frame["recorded_at"], frame["air_temperature"], label="air °C")
    ax.plot(frame["recorded_at"], frame["track_temperature"], label="track °C")
    rain = frame[frame["rainfall"].fillna(0) > 0]
    for when in rain["recorded_at"]:
        ax.axvline(when, color="#0067ad", alpha=0.15)
    ax.set_xlabel("time (UTC)")
    if not frame.empty:
        ax.legend()
    fig.tight_layout()
    return fig


# A page's file name holds at most this many characters of its percent-encoded race id.
PAGE_NAME_CHARS = 200


def page_path(
    reports_dir: Path | str, race_id: str, session_kind: str = "race", suffix: str = ".html"
) -> Path:
    """Where the page of the race's session of ``session_kind`` goes: ``races/<race_id>.html``
    for the race, ``races/<kind>/<race_id>.html`` for another session (the races folder holds
    one page a race, a sprint's is in ``races/sprint/``); ``suffix`` ``.ipynb``: its notebook.
    The race id is the application's: percent-encoded into one file name (``a/b`` is
    ``a%2Fb``), so no id reaches another folder; an encoded id longer than
    :data:`PAGE_NAME_CHARS` keeps its start and ends with a digest of the whole id (a file name
    has at most 255 bytes)."""
    from urllib.parse import quote

    races = Path(reports_dir) / "races"
    name = quote(str(race_id), safe="")
    if len(name) > PAGE_NAME_CHARS:
        start = re.sub(r"%[0-9A-F]?$", "", name[: PAGE_NAME_CHARS - 17])  # no cut escape
        name = f"{start}~{hashlib.sha256(str(race_id).encode()).hexdigest()[:16]}"
    return (races if session_kind == "race" else races / session_kind) / f"{name}{suffix}"


def render(
    race_id: str,
    reports_dir: Path | str,
    session_kind: str = "race",
    data_version: str | None = None,
    kernel=None,
    races: RacesTable | None = None,
) -> Path:
    """Execute the page of the race's session of ``session_kind`` into ``<reports>/races/
    <race_id>.ipynb`` (:func:`page_path`) and export it to HTML beside it; the HTML's path.
    Offline: the page reads the marts only. ``data_version``: the race data version it shows,
    kept as a parameter of the page. ``kernel``: a ``notebooks.SharedKernel`` the pages of one
    sync share, else one of its own. ``races``: the application's races table (default
    public.races, the run's vars name another), where the page looks the race's keys up."""
    from racemap.reporting import notebooks

    races = races or RacesTable.from_vars(None)

    output = notebooks.run(
        NOTEBOOK,
        page_path(reports_dir, race_id, session_kind, ".ipynb"),
        {
            "race_id": str(race_id),
            "offline": True,
            "session_kind": session_kind,
            "data_version": data_version,
            "races": races.as_vars(),
        },
        timeout=600,
        label=f"{session_kind} page",
        kernel=kernel,
    )
    return notebooks.export_html(output, page_path(reports_dir, race_id, session_kind))


# The index of a report set's pages: every value escaped by Jinja's autoescape (race names are
# the application's), each link quoted.
INDEX_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Race pages</title>
<style>
body { font-family: sans-serif; margin: 2em; }
table { border-collapse: collapse; }
th, td { padding: 0.3em 0.8em; text-align: left; border-bottom: 1px solid #ddd; }
</style></head>
<body>
<h1>Race pages</h1>
<p>{{ counted }}, rendered by <code>racemap sync</code>: each shows one session's race
data under the application's race and driver ids.</p>
<table>
<thead><tr><th>race</th><th>season</th><th>name</th><th>date</th><th>session</th>
<th>session key</th><th>page</th></tr></thead>
<tbody>
{%- for page in pages %}
<tr><td>{{ page.race_id }}</td><td>{{ page.season }}</td><td>{{ page.race_name }}</td>
{#- #}<td>{{ page.date }}</td><td>{{ page.kind }}</td><td>{{ page.session_key }}</td>
{#- #}<td><a href="{{ page.href }}">{{ page.path }}</a></td></tr>
{%- endfor %}
</tbody></table>
</body></html>
"""


def count_pages(pages: list[tuple[str, str]], noun: str = "page") -> str:
    """How many pages (``published_pages``) of how many races: ``2 pages of 1 race``."""
    return f"{plural(len(pages), noun)} of {plural(len({race_id for race_id, _ in pages}), 'race')}"


def published_pages(reports_dir: Path | str) -> list[tuple[str, str]]:
    """(race_id, session_kind) of each page in the report set: ``races/<race_id>.html`` a
    race's, ``races/<kind>/<race_id>.html`` another session's (:func:`page_path`)."""
    from urllib.parse import unquote

    races = Path(reports_dir) / "races"
    return [
        (
            page_parameter(page, "race_id") or unquote(page.name.removesuffix(".html"))
            if _DIGEST.search(page.stem)
            else unquote(page.name.removesuffix(".html")),
            "race" if page.parent == races else page.parent.name,
        )
        for page in [*races.glob("*.html"), *races.glob("*/*.html")]
    ]


# The end of a page name cut short (page_path): its race id is in the page's notebook.
_DIGEST = re.compile(r"~[0-9a-f]{16}$")


def page_parameter(page: Path, name: str):
    """The papermill parameter ``name`` of the page's notebook beside it (None without one)."""
    import json

    try:
        metadata = json.loads(page.with_suffix(".ipynb").read_text())["metadata"]
        return metadata["papermill"]["parameters"].get(name)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def write_index(conn, reports_dir: Path | str) -> Path:
    """``<reports>/race_pages.html``: the set's pages, oldest race first (the race's page before
    its other sessions'), each with the race's season, name and date and the session's key from
    the mapping (``-`` for a page whose race is no longer mapped)."""
    from urllib.parse import quote

    from jinja2 import Environment

    reports_dir = Path(reports_dir)
    pages = published_pages(reports_dir)
    known: dict[tuple[str, str], tuple] = {}
    with conn.cursor() as cur:
        if _built(cur, "race_openf1_sessions"):
            cur.execute(
                "select m.race_id::text, s.session_kind, m.season, m.race_name,"
                " m.race_start_at, s.session_key"
                " from racemap.race_openf1_mapping m"
                " join racemap.race_openf1_sessions s on s.race_id::text = m.race_id::text"
                " where m.race_id::text = any(%s)",
                (sorted({race_id for race_id, _kind in pages}),),
            )
            known = {(row[0], row[1]): row[2:] for row in cur.fetchall()}
    rows = []
    for race_id, kind in pages:
        season, name, starts_at, session_key = known.get((race_id, kind), (None,) * 4)
        # The UTC date: psycopg2 gives the time in the database's TimeZone.
        date = starts_at.astimezone(UTC).date().isoformat() if starts_at else None
        path = page_path(".", race_id, kind).as_posix()
        rows.append(
            {
                "race_id": race_id,
                "kind": kind,
                "season": "-" if season is None else season,
                "race_name": name or "-",
                "date": date or "-",
                "session_key": "-" if session_key is None else session_key,
                "path": path,
                "href": quote(path),
                "order": (date is None, date or "", race_id, kind != "race", kind),
            }
        )
    rows.sort(key=lambda row: row["order"])
    html = (
        Environment(autoescape=True)
        .from_string(INDEX_TEMPLATE)
        .render(pages=rows, counted=count_pages(pages))
    )
    index = reports_dir / INDEX
    index.write_text(html, encoding="utf-8")
    return index
