"""``racemap bench``: requests, time and growth, measured side by side.

Four measurements in one run, each in its own throw-away database on the given server (dropped at
the end), printed as tables and written to ``<reports>/bench.json``:

1. **requests** -- racemap's load (one request per endpoint per season) against the original
   design's per-race algorithm (for each unmapped race one meetings query by circuit and date,
   then one sessions query), both against the same local OpenF1 server with the same client-side
   rate limit (30 requests / 10 s). The per-race reference exists only here. ``reference_races``
   limits it to the first N races; the full figure is then *extrapolated* (and labelled so).
2. **scales** -- synthetic data ×1, ×10, ×100, ×1000 of the real 2023-2025 volume: the real
   OpenF1 snapshot and the 2022-2026 races are copied into "universes", each with its own
   circuit keys, circuit ids, meeting, session and race ids (universe 0 is the real data), so every
   universe keeps the real shape (sprint weekends, testing, a cancelled meeting, races outside
   OpenF1's coverage, races OpenF1 has nothing for). Generated in SQL (generate_series). At each
   scale: ``dbt build`` of the models (seeds excluded: the synthetic circuit map is loaded into
   the seed's table; the project's seeds are not touched) and the apply, timed; the growth ratio
   between consecutive scales; EXPLAIN ANALYZE of the mapping at the largest scale.
3. **end_to_end** -- ``racemap run --offline`` in a child process, twice (the first fills an empty
   database, the second is the warm run), with the stage split from its summary.json and the
   process start-up (total minus the stages).
4. **imports** -- what importing the CLI and the pipeline costs (``python -X importtime``) and
   whether a heavy library (Great Expectations, dbt, papermill, pandas) is imported before the
   stage that needs it.

Figures are printed, never asserted: tests check the structure and the facts (request counts,
same races mapped), not the timings.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from psycopg2 import sql

from . import dbt
from .db import Database, resolve_database
from .errors import RacemapError
from .paths import DEFAULT_REPORTS_DIR, PROJECT_DIR
from .settings import RacesTable, parse_vars, temporary_environ

DEFAULT_SCALES = (1, 10, 100, 1000)
DEFAULT_SEASONS = (2023, 2024, 2025)
# The bundled snapshot's seasons: `racemap run --offline` without --seasons asks for 2023 to this
# year, and the raw checkpoint fails on a season the snapshot does not hold.
SNAPSHOT_SEASONS = "2023-2025"
DEFAULT_REFERENCE_RACES = None  # all of them: ~140 requests, ~45 s at 30 requests / 10 s
RATE_MAX_REQUESTS = 30
RATE_PERIOD = 10.0
# Per universe: the real races of these seasons (2022: before coverage, 2026: not in the snapshot).
UNIVERSE_SEASONS = (2022, 2026)
# Offsets per universe: far above the real keys (meeting_key <= ~1300, session_key <= ~10100,
# circuit_key <= ~160), and x1000 stays well inside integer.
MEETING_OFFSET, SESSION_OFFSET, CIRCUIT_OFFSET = 10_000, 100_000, 1_000
HEAVY_MODULES = ("great_expectations", "dbt", "papermill", "pandas", "pgserver", "sqlalchemy")
TOLERANCE = timedelta(hours=36)  # the models' default match_tolerance_hours
# A scale whose dbt build runs longer than this is cancelled and reported as not finished.
DEFAULT_MAX_BUILD_SECONDS = 120.0


# --------------------------------------------------------------------------------------------
# Scratch databases
# --------------------------------------------------------------------------------------------


@dataclass
class Scratch:
    """Throw-away databases on one server, dropped at the end (unless kept)."""

    server: Database
    prefix: str = field(default_factory=lambda: f"racemap_bench_{uuid.uuid4().hex[:8]}")
    keep: bool = False
    created: list[Database] = field(default_factory=list)

    def _admin(self):
        conn = self.server.connect()
        conn.autocommit = True
        return conn

    def create(self, part: str) -> Database:
        name = f"{self.prefix}_{part}"
        conn = self._admin()
        try:
            with conn.cursor() as cur:
                cur.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        finally:
            conn.close()
        # The server's URL options too (sslmode, ...): no scratch database gets less.
        db = replace(self.server, dbname=name, embedded=False, _server=None)
        self.created.append(db)
        return db

    def drop_all(self) -> None:
        if self.keep:
            return
        conn = self._admin()
        try:
            with conn.cursor() as cur:
                for db in self.created:
                    cur.execute(
                        sql.SQL("drop database if exists {} with (force)").format(
                            sql.Identifier(db.dbname)
                        )
                    )
        finally:
            conn.close()
        self.created.clear()


@contextmanager
def _isolated_tool_dirs():
    """dbt target/logs and the GX context in a temp dir (unless the caller chose them)."""
    with tempfile.TemporaryDirectory(prefix="racemap-bench-") as tmp:
        base = Path(tmp)
        chosen = {
            key: os.environ.get(key) or str(base / sub)
            for key, sub in (
                ("DBT_TARGET_PATH", "dbt-target"),
                ("DBT_LOG_PATH", "dbt-logs"),
                ("RACEMAP_GX_ROOT", "gx-root"),
            )
        }
        with temporary_environ(**chosen):
            yield base


def _rows(db: Database, statement, params=None) -> list[tuple]:
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(statement, params)
        return cur.fetchall() if cur.description else []


def _execute(db: Database, statement, params=None) -> None:
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(statement, params)


def _prepare_demo_database(db: Database, variables: dict) -> None:
    """The demo races (as on the embedded database), the raw tables, the key columns."""
    from .demo import create_demo_tables
    from .loader import ensure_raw_tables

    db.export_env()
    with db.transaction() as conn:
        create_demo_tables(conn)
        ensure_raw_tables(conn)
    dbt.migrate(variables)


def _circuit_map() -> dict[str, int]:
    with (PROJECT_DIR / "seeds" / "circuit_map.csv").open(newline="", encoding="utf-8") as f:
        return {r["circuit_id"]: int(r["circuit_key"]) for r in csv.DictReader(f)}


def _mapped(db: Database, seasons) -> dict[str, tuple[int, int]]:
    rows = _rows(
        db,
        "select race_id, meeting_key, session_key from racemap.race_openf1_mapping"
        " where status = 'mapped' and season = any(%s)",
        (list(seasons),),
    )
    return {r[0]: (r[1], r[2]) for r in rows}


# --------------------------------------------------------------------------------------------
# 1. Requests: racemap's load against the per-race reference
# --------------------------------------------------------------------------------------------


@dataclass
class RaceRow:
    race_id: str
    circuit_id: str
    start: datetime


class PerRaceReference:
    """The original design, for comparison only: two requests per unmapped race.

    For each race: ``GET /meetings?circuit_key=K&year=Y`` (one meetings query by circuit and
    date: the local server, like racemap's client, filters on equality only, so the date is
    narrowed to [race - 7 days, race + 1 day] here, on at most a season's meetings at one
    circuit), then, for the latest non-cancelled meeting in that window,
    ``GET /sessions?meeting_key=M&session_name=Race`` (one sessions query); the race maps when that
    Race session starts within ±36 h of the race. A race whose circuit is not in the circuit map
    costs nothing; one with no meeting costs one request. Whatever the server answers is checked
    against the filters asked for (``server_filtered`` says whether it applied them).
    """

    def __init__(self, base_url: str, circuit_map: dict[str, int]):
        import httpx

        from .openf1 import RateLimiter

        self.limiter = RateLimiter(RATE_MAX_REQUESTS, RATE_PERIOD)
        self.http = httpx.Client(base_url=base_url.rstrip("/"), timeout=30.0)
        self.circuit_map = circuit_map
        self.requests = 0
        self.retries = 0
        self.server_filtered = True

    def close(self) -> None:
        self.http.close()

    def _get(self, path: str, query: str) -> list:
        for _attempt in range(6):
            self.limiter.acquire()
            self.requests += 1
            response = self.http.get(f"{path}?{query}")
            if response.status_code == 429:
                self.retries += 1
                time.sleep(float(response.headers.get("retry-after") or 1.0))
                continue
            if response.status_code == 404:
                return []
            response.raise_for_status()
            body = response.json()
            return body if isinstance(body, list) else []
        raise RacemapError(f"reference: {path} throttled six times")

    def map_race(self, race: RaceRow) -> tuple[int, int] | None:
        circuit_key = self.circuit_map.get(race.circuit_id)
        if circuit_key is None:
            return None
        low = (race.start - timedelta(days=7)).date().isoformat()
        high = (race.start + timedelta(days=1)).date().isoformat()
        year = race.start.year
        answer = self._get("/meetings", f"circuit_key={circuit_key}&year={year}")
        if any(m.get("circuit_key") != circuit_key or m.get("year") != year for m in answer):
            self.server_filtered = False
        meetings = [
            m
            for m in answer
            if m.get("circuit_key") == circuit_key and low <= str(m.get("date_start"))[:10] <= high
        ]
        meetings = [
            m
            for m in meetings
            if not m.get("is_cancelled")
            and not str(m.get("meeting_official_name") or "")
            .strip()
            .upper()
            .startswith("CALLED OFF")
        ]
        if not meetings:
            return None
        meeting = max(meetings, key=lambda m: str(m.get("date_start")))
        answer = self._get("/sessions", f"meeting_key={meeting['meeting_key']}&session_name=Race")
        sessions = [
            s
            for s in answer
            if s.get("meeting_key") == meeting["meeting_key"] and s.get("session_name") == "Race"
        ]
        if len(sessions) != len(answer):
            self.server_filtered = False
        near = [
            s
            for s in sessions
            if s.get("date_start")
            and abs(datetime.fromisoformat(s["date_start"]) - race.start) <= TOLERANCE
            and not s.get("is_cancelled")
        ]
        if len(near) != 1:
            return None
        return meeting["meeting_key"], near[0]["session_key"]


def _unmapped_races(db: Database, seasons) -> list[RaceRow]:
    rows = _rows(
        db,
        "select id, circuit_id, date, time from public.races"
        " where year = any(%s) and openf1_meeting_key is null order by date, id",
        (list(seasons),),
    )
    out = []
    for race_id, circuit_id, day, clock in rows:
        start = datetime.combine(day, clock or datetime.min.time().replace(hour=12), tzinfo=UTC)
        out.append(RaceRow(str(race_id), circuit_id, start))
    return out


def _rate_limited_estimate(requests: int, seconds_per_request: float) -> float:
    """Wall time of ``requests`` under a 30 / 10 s sliding window: service time + waiting."""
    windows = max(0, (requests - 1) // RATE_MAX_REQUESTS)
    return requests * seconds_per_request + windows * RATE_PERIOD


def bench_requests(
    scratch: Scratch,
    seasons=DEFAULT_SEASONS,
    reference_races: int | None = DEFAULT_REFERENCE_RACES,
    variables: dict | None = None,
    log=print,
) -> dict:
    from .apply import apply_updates
    from .loader import load_openf1
    from .openf1 import OpenF1Client

    try:
        from .openf1_server import serve
    except ImportError:
        return {"skipped": "racemap.openf1_server is not there yet"}

    variables = variables or {}
    db = scratch.create("requests")
    _prepare_demo_database(db, variables)
    races = _unmapped_races(db, seasons)
    total_races = len(races)
    chosen = races if reference_races is None else races[: max(0, int(reference_races))]
    log(f"requests: per-race reference over {len(chosen)} of {total_races} races ...")

    with serve(records_dir=None, max_requests=RATE_MAX_REQUESTS, period=RATE_PERIOD) as server:
        server.reset()
        reference = PerRaceReference(server.base_url, _circuit_map())
        start = time.perf_counter()
        ref_mapped: dict[str, tuple[int, int]] = {}
        try:
            for race in chosen:
                keys = reference.map_race(race)
                if keys:
                    ref_mapped[race.race_id] = keys
        finally:
            reference.close()
        ref_seconds = time.perf_counter() - start
        ref_server_requests = server.requests

        log("requests: racemap (load, dbt build, apply) ...")
        server.reset()  # counter and the server's window; racemap's client has its own limiter
        start = time.perf_counter()
        with OpenF1Client(base_url=server.base_url) as client:
            loaded = load_openf1(db, list(seasons), client=client, refresh=True)
        load_seconds = time.perf_counter() - start
        dbt.build(variables)
        build_done = time.perf_counter()
        apply_updates(db, f"bench-{uuid.uuid4().hex[:8]}", RacesTable.from_vars(variables))
        racemap_seconds = time.perf_counter() - start
        racemap_server_requests = server.requests

    racemap_mapped = _mapped(db, seasons)
    chosen_ids = {r.race_id for r in chosen}
    racemap_on_chosen = {k: v for k, v in racemap_mapped.items() if k in chosen_ids}
    with_meeting = sum(1 for r in chosen if r.race_id in racemap_mapped)
    ref_requests = reference.requests
    per_request = ref_seconds / ref_requests if ref_requests else 0.0
    # The full reference: two requests per race that has a meeting, one for a race that has none.
    full_requests = (
        ref_requests
        if len(chosen) == total_races
        else round(ref_requests / len(chosen) * total_races)
        if chosen
        else 0
    )
    full_seconds = (
        ref_seconds
        if len(chosen) == total_races
        else _rate_limited_estimate(full_requests, per_request)
    )
    return {
        "seasons": list(seasons),
        "races_in_seasons": total_races,
        "rate_limit": f"{RATE_MAX_REQUESTS} requests / {RATE_PERIOD:g} s (client side, both)",
        "racemap": {
            "requests": loaded.requests,
            "server_requests": racemap_server_requests,
            "requests_per_season": round(loaded.requests / len(seasons), 2),
            "load_seconds": round(load_seconds, 3),
            "dbt_build_seconds": round(build_done - start - load_seconds, 3),
            "seconds": round(racemap_seconds, 3),
            "mapped": len(racemap_mapped),
        },
        "reference": {
            "races": len(chosen),
            "races_mapped_by_racemap": with_meeting,
            "requests": ref_requests,
            "queries": ref_requests - reference.retries,
            "server_requests": ref_server_requests,
            "throttled_retries": reference.retries,
            "seconds": round(ref_seconds, 3),
            "mapped": len(ref_mapped),
            "server_filtered": reference.server_filtered,
            "same_mapping_as_racemap": ref_mapped == racemap_on_chosen,
            "differences": sorted(set(ref_mapped.items()) ^ set(racemap_on_chosen.items()))[:10],
            "extrapolated": len(chosen) != total_races,
            "full_requests": full_requests,
            "full_seconds": round(full_seconds, 3),
        },
        "ratio": {
            "requests": round(full_requests / loaded.requests, 1) if loaded.requests else None,
            "seconds_vs_load": round(full_seconds / load_seconds, 1) if load_seconds else None,
            "seconds_vs_load_build_apply": round(full_seconds / racemap_seconds, 1)
            if racemap_seconds
            else None,
        },
    }


# --------------------------------------------------------------------------------------------
# 2. Scales: synthetic universes
# --------------------------------------------------------------------------------------------

# One cancelled meeting per universe (the snapshot has none): Imola 2023, called off. No race in
# the races table is near it, so it changes no mapping; it is there for the shape.
_CANCELLED_MEETING = {
    "meeting_key": 9001,
    "meeting_name": "Emilia Romagna Grand Prix",
    "meeting_official_name": "CALLED OFF - FORMULA 1 GRAN PREMIO DEL MADE IN ITALY E "
    "DELL'EMILIA-ROMAGNA 2023",
    "circuit_key": 6,
    "circuit_short_name": "Imola",
    "location": "Imola",
    "country_name": "Italy",
    "date_start": "2023-05-19T11:30:00+00:00",
    "date_end": "2023-05-21T15:00:00+00:00",
    "is_cancelled": True,
    "year": 2023,
}
_CANCELLED_SESSIONS = [
    (90001, "Practice 1", "Practice", "2023-05-19T11:30:00+00:00"),
    (90002, "Practice 2", "Practice", "2023-05-19T15:00:00+00:00"),
    (90003, "Practice 3", "Practice", "2023-05-20T10:30:00+00:00"),
    (90004, "Qualifying", "Qualifying", "2023-05-20T14:00:00+00:00"),
    (90005, "Race", "Race", "2023-05-21T13:00:00+00:00"),
]


def _columns(db: Database, schema: str, table: str) -> list[str]:
    rows = _rows(
        db,
        "select column_name from information_schema.columns where table_schema = %s"
        " and table_name = %s order by ordinal_position",
        (schema, table),
    )
    return [r[0] for r in rows]


def _setup_universe_base(db: Database, variables: dict, log=print) -> dict:
    """Real data into bench.base_*: snapshot, 2022-2026 races, circuit map; seeds in place."""
    from . import records
    from .loader import load_openf1

    _prepare_demo_database(db, variables)
    load_openf1(db, list(DEFAULT_SEASONS), offline=True)
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute("create schema bench")
        cur.execute("create table bench.base_meetings as table raw.openf1_meetings")
        cur.execute("create table bench.base_sessions as table raw.openf1_sessions")
        m = _CANCELLED_MEETING
        cols = [c for c in records.columns("meetings") if c in m]
        cur.execute(
            sql.SQL("insert into bench.base_meetings ({}, record) values ({}, %s)").format(
                sql.SQL(", ").join(map(sql.Identifier, cols)),
                sql.SQL(", ").join(sql.Placeholder() * len(cols)),
            ),
            [m[c] for c in cols] + [json.dumps(m)],
        )
        for key, name, kind, start in _CANCELLED_SESSIONS:
            record = {
                "session_key": key,
                "meeting_key": m["meeting_key"],
                "session_name": name,
                "session_type": kind,
                "circuit_key": m["circuit_key"],
                "circuit_short_name": m["circuit_short_name"],
                "location": m["location"],
                "country_name": m["country_name"],
                "date_start": start,
                "is_cancelled": True,
                "year": 2023,
            }
            cur.execute(
                "insert into bench.base_sessions (session_key, meeting_key, session_name,"
                " session_type, circuit_key, circuit_short_name, location, country_name,"
                " date_start, date_end, is_cancelled, year, record) values"
                " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s::timestamptz + interval '1 hour',"
                " true, 2023, %s)",
                [
                    key,
                    m["meeting_key"],
                    name,
                    kind,
                    m["circuit_key"],
                    m["circuit_short_name"],
                    m["location"],
                    m["country_name"],
                    start,
                    start,
                    json.dumps(record),
                ],
            )
        # The application's races: the real 2022-2026 ones; a plain table (no circuits FK),
        # keyed as racemap's migration leaves it.
        cur.execute(
            "create table bench.base_races as select id, year, round, circuit_id, name, date,"
            " time, url from public.races where year between %s and %s",
            UNIVERSE_SEASONS,
        )
        cur.execute("drop table public.races cascade")
        cur.execute("drop table public.circuits cascade")
        cur.execute("create table public.races (like bench.base_races including all)")
        cur.execute("alter table public.races add primary key (id)")
    dbt.migrate(variables)
    dbt.require(dbt.invoke(["seed", "--full-refresh"], variables))
    _execute(db, "create table bench.base_circuit_map as table racemap_seeds.circuit_map")
    counts = _rows(
        db,
        "select (select count(*) from bench.base_races),"
        " (select count(*) from bench.base_races where year between 2023 and 2025),"
        " (select count(*) from bench.base_meetings),"
        " (select count(*) from bench.base_sessions),"
        " (select count(*) from bench.base_circuit_map)",
    )[0]
    return dict(
        zip(
            ("races", "races_2023_2025", "meetings", "sessions", "circuit_map_rows"),
            counts,
            strict=True,
        )
    )


def _universe_select(columns: list[str], table: str, offsets: dict[str, str]) -> sql.Composed:
    exprs = [
        sql.SQL(offsets[c]).format(col=sql.Identifier("b", c))
        if c in offsets
        else sql.Identifier("b", c)
        for c in columns
    ]
    return sql.SQL(
        "insert into {target} ({cols}) select {exprs} from bench.{base} as b"
        " cross join generate_series(0, %(copies)s - 1) as u"
    ).format(
        target=sql.SQL(table),
        cols=sql.SQL(", ").join(map(sql.Identifier, columns)),
        exprs=sql.SQL(", ").join(exprs),
        base=sql.Identifier(f"base_{table.split('.')[-1].removeprefix('openf1_')}"),
    )


def _generate_scale(db: Database, copies: int) -> dict:
    """Replace the raw tables, the races and the circuit map with ``copies`` universes."""
    suffix = "case when u = 0 then {col} else {col} || '~u' || u end"
    meetings = _universe_select(
        [c for c in _columns(db, "raw", "openf1_meetings") if c != "loaded_at"],
        "raw.openf1_meetings",
        {
            "meeting_key": "{col} + u * " + str(MEETING_OFFSET),
            "circuit_key": "{col} + u * " + str(CIRCUIT_OFFSET),
        },
    )
    sessions = _universe_select(
        [c for c in _columns(db, "raw", "openf1_sessions") if c != "loaded_at"],
        "raw.openf1_sessions",
        {
            "session_key": "{col} + u * " + str(SESSION_OFFSET),
            "meeting_key": "{col} + u * " + str(MEETING_OFFSET),
            "circuit_key": "{col} + u * " + str(CIRCUIT_OFFSET),
        },
    )
    races = _universe_select(
        ["id", "year", "round", "circuit_id", "name", "date", "time", "url"],
        "public.races",
        {"id": suffix, "circuit_id": suffix},
    )
    circuit_map = sql.SQL(
        "insert into racemap_seeds.circuit_map (circuit_id, circuit_key, circuit_short_name, note)"
        " select case when u = 0 then b.circuit_id else b.circuit_id || '~u' || u end,"
        " b.circuit_key + u * {offset}, b.circuit_short_name,"
        " case when u = 0 then b.note else 'bench universe ' || u end"
        " from bench.base_circuit_map as b cross join generate_series(0, %(copies)s - 1) as u"
    ).format(offset=sql.Literal(CIRCUIT_OFFSET))
    start = time.perf_counter()
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(
            "truncate raw.openf1_meetings, raw.openf1_sessions, public.races,"
            " racemap_seeds.circuit_map"
        )
        for statement in (meetings, sessions, races, circuit_map):
            cur.execute(statement, {"copies": copies})
    conn = db.connect()
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            for table in (
                "raw.openf1_meetings",
                "raw.openf1_sessions",
                "public.races",
                "racemap_seeds.circuit_map",
            ):
                cur.execute(f"vacuum analyze {table}")
    finally:
        conn.close()
    seconds = time.perf_counter() - start
    counts = _rows(
        db,
        "select (select count(*) from public.races), (select count(*) from raw.openf1_meetings),"
        " (select count(*) from raw.openf1_sessions),"
        " (select count(*) from racemap_seeds.circuit_map)",
    )[0]
    return {
        "races": counts[0],
        "meetings": counts[1],
        "sessions": counts[2],
        "circuit_map_rows": counts[3],
        "generate_seconds": round(seconds, 3),
    }


@contextmanager
def _cancel_after(db: Database, seconds: float | None):
    """Cancel every query in ``db`` once ``seconds`` have passed (until the block ends)."""
    fired: list[float] = []
    if not seconds:
        yield fired
        return
    stop = threading.Event()

    def watch():
        if stop.wait(seconds):
            return
        fired.append(seconds)
        while not stop.is_set():
            # The build may be closing its connections right now: try again in a second.
            with suppress(Exception):
                _rows(
                    db,
                    "select pg_cancel_backend(pid) from pg_stat_activity"
                    " where datname = %s and pid <> pg_backend_pid()",
                    (db.dbname,),
                )
            stop.wait(1.0)

    thread = threading.Thread(target=watch, name="bench-build-budget", daemon=True)
    thread.start()
    try:
        yield fired
    finally:
        stop.set()
        thread.join()


def _node_seconds(outcome) -> dict[str, float]:
    out = {}
    for item in outcome.results:
        node = getattr(item, "node", None)
        if node is None or getattr(node, "resource_type", None) is None:
            continue
        name = f"{str(node.resource_type).split('.')[-1].lower()}:{node.name}"
        out[name] = round(float(getattr(item, "execution_time", 0.0) or 0.0), 3)
    return out


EXPLAIN_QUERIES = {
    "candidates (range join)": (
        "select * from racemap_intermediate.int_races_joined_to_race_sessions"
    ),
    "race_openf1_mapping (whole mapping)": (
        "select * from racemap_intermediate.int_races_matched_to_meetings"
    ),
}


def _explain(db: Database, statement: str, analyze: bool) -> list[str]:
    options = "analyze, buffers off, costs off" if analyze else "costs on"
    return [r[0] for r in _rows(db, f"explain ({options}) {statement}")]


def _plan_findings(plan: list[str]) -> list[str]:
    text = "\n".join(plan)
    findings = []
    if re.search(r"Index (Only )?Scan using openf1_sessions_circuit_start_idx", text):
        findings.append("the (circuit_key, date_start) index serves the range join")
    else:
        findings.append(
            "the (circuit_key, date_start) index is NOT used: the range join is a hash join on "
            "circuit_key with the time window as a join filter"
        )
    hashed = set(re.findall(r"hashed SubPlan (\d+)", text))
    correlated = {}
    for i, line in enumerate(plan):
        m = re.match(r"\s*SubPlan (\d+)$", line)
        if m and m.group(1) not in hashed and i + 1 < len(plan):
            loops = re.search(r"loops=(\d+)", plan[i + 1])
            correlated[m.group(1)] = int(loops.group(1)) if loops else None
    if correlated:
        counts = [n for n in correlated.values() if n is not None]
        findings.append(
            f"{len(correlated)} correlated SubPlan(s) run once per outer row"
            + (f" (up to {max(counts)} times): quadratic" if counts else "")
        )
    else:
        findings.append("no correlated SubPlan: every join is a hash or merge join")
    for m in re.finditer(r"Rows Removed by (Join )?Filter: (\d+)", text):
        if int(m.group(2)) > 1_000_000:
            findings.append(f"a filter discards {m.group(2)} rows (a join that grows with n²?)")
    if re.search(r"Nested Loop[^\n]*\n(?:[^\n]*\n){0,3}[^\n]*Seq Scan", text):
        findings.append("a nested loop over a sequential scan")
    return findings


def bench_scales(
    scratch: Scratch,
    scales=DEFAULT_SCALES,
    variables: dict | None = None,
    max_build_seconds: float | None = DEFAULT_MAX_BUILD_SECONDS,
    log=print,
) -> dict:
    from .apply import apply_updates

    variables = variables or {}
    db = scratch.create("scales")
    log("scales: loading the real data as universe 0 ...")
    base = _setup_universe_base(db, variables, log)
    results, unfinished = [], []
    exclude = ["--exclude", "resource_type:seed"]
    plans = {}
    largest = max(int(s) for s in scales)
    for copies in sorted(set(int(s) for s in scales)):
        log(f"scales: x{copies}: generating ...")
        volume = _generate_scale(db, copies)
        log(
            f"scales: x{copies}: {volume['races']} races, {volume['meetings']} meetings, "
            f"{volume['sessions']} sessions; dbt build ..."
        )
        start = time.perf_counter()
        with _cancel_after(db, max_build_seconds) as cancelled:
            outcome = dbt.invoke(["build", *exclude], variables)
        build_seconds = time.perf_counter() - start
        nodes = _node_seconds(outcome)
        if cancelled or not outcome.success:
            why = (
                f"dbt build cancelled after {max_build_seconds:g} s (the budget per scale)"
                if cancelled
                else "dbt build failed: " + "; ".join(outcome.failures[:3])
            )
            log(f"scales: x{copies}: {why}")
            unfinished.append(
                {
                    "scale": copies,
                    **volume,
                    "finished": False,
                    "reason": why,
                    "dbt_build_seconds": round(build_seconds, 3),
                    "nodes_finished": {k: v for k, v in nodes.items() if v},
                }
            )
            if copies == largest:
                log(f"scales: x{copies}: EXPLAIN (estimates only: the build did not finish) ...")
                for label, statement in EXPLAIN_QUERIES.items():
                    plan = _explain(db, statement, analyze=False)
                    plans[f"{label}, x{copies}, EXPLAIN without ANALYZE"] = {
                        "plan": plan,
                        "findings": _plan_findings(plan),
                    }
            break
        models = {k: v for k, v in nodes.items() if k.startswith("model:")}
        tests = {k: v for k, v in nodes.items() if "test:" in k}
        log(f"scales: x{copies}: apply ...")
        start = time.perf_counter()
        applied = apply_updates(
            db, f"bench-x{copies}-{uuid.uuid4().hex[:6]}", RacesTable.from_vars(variables)
        )
        apply_seconds = time.perf_counter() - start
        by_reason = dict(
            _rows(
                db,
                "select coalesce(reason, 'mapped'), count(*) from racemap.race_openf1_mapping"
                " group by 1 order by 1",
            )
        )
        results.append(
            {
                "scale": copies,
                **volume,
                "finished": True,
                "dbt_build_seconds": round(build_seconds, 3),
                "models_seconds": round(sum(models.values()), 3),
                "tests_seconds": round(sum(tests.values()), 3),
                "mapping_model_seconds": models.get("model:race_openf1_mapping"),
                "slowest_nodes": dict(sorted(nodes.items(), key=lambda kv: -kv[1])[:3]),
                "apply_seconds": round(apply_seconds, 3),
                "applied": applied.applied,
                "conflicts": applied.conflicts,
                "by_reason": by_reason,
            }
        )
    if results:
        done = results[-1]["scale"]
        if unfinished:  # the tables hold the unfinished scale: back to the last finished one
            _generate_scale(db, done)
        log(f"scales: x{done}: EXPLAIN ANALYZE ...")
        for label, statement in EXPLAIN_QUERIES.items():
            plan = _explain(db, statement, analyze=True)
            plans[f"{label}, x{done}, EXPLAIN ANALYZE"] = {
                "plan": plan,
                "findings": _plan_findings(plan),
            }
    first = results[0] if results else None
    for row in results:
        factor = row["scale"] / first["scale"]
        row["mapped_matches_scale"] = all(
            row["by_reason"].get(k, 0) == v * factor for k, v in first["by_reason"].items()
        ) and set(row["by_reason"]) == set(first["by_reason"])
    growth = []
    for low, high in zip(results, results[1:], strict=False):
        growth.append(
            {
                "from": low["scale"],
                "to": high["scale"],
                "data": round(high["sessions"] / low["sessions"], 1),
                **{
                    key: round(high[key] / low[key], 1) if low.get(key) and high.get(key) else None
                    for key in (
                        "dbt_build_seconds",
                        "models_seconds",
                        "mapping_model_seconds",
                        "apply_seconds",
                    )
                },
            }
        )
    return {
        "universe": {
            **base,
            "note": "universe 0 is the real data: the 2023-2025 OpenF1 snapshot (+1 synthetic "
            "cancelled meeting) and the real 2022-2026 races; universe u>0 copies it with "
            f"circuit_key+{CIRCUIT_OFFSET}u, meeting_key+{MEETING_OFFSET}u, "
            f"session_key+{SESSION_OFFSET}u, ids and circuit ids suffixed '~u<u>'",
        },
        "max_build_seconds": max_build_seconds,
        "results": results,
        "unfinished": unfinished,
        "growth": growth,
        "explain": plans,
    }


# --------------------------------------------------------------------------------------------
# 3. End to end: racemap run --offline, warm, split by stage
# --------------------------------------------------------------------------------------------


def _racemap_command() -> list[str]:
    return [sys.executable, "-m", "racemap.cli"]


def bench_end_to_end(
    scratch: Scratch | None, variables: dict | None = None, runs: int = 2, log=print
) -> dict:
    """``racemap run --offline`` in a child process, ``runs`` times; the last one is warm.

    With a server URL the runs go to a scratch database holding the demo races; without one they
    use the embedded database exactly as ``racemap run --offline`` does (a second run changes
    nothing there).
    """
    env = dict(os.environ)
    if scratch is not None and not scratch.server.embedded:
        db = scratch.create("e2e")
        with db.transaction() as conn:
            from .demo import create_demo_tables

            create_demo_tables(conn)
        env["DATABASE_URL"] = db.url
        where = "a scratch database with the demo races"
    else:
        env.pop("DATABASE_URL", None)
        where = "the embedded database (.racemap/pgdata)"
    out = {"database": where, "runs": []}
    with tempfile.TemporaryDirectory(prefix="racemap-bench-e2e-") as tmp:
        for n in range(runs):
            reports = Path(tmp) / f"run{n}"
            command = [
                *_racemap_command(),
                "run",
                "--offline",
                "--seasons",
                SNAPSHOT_SEASONS,
                "--reports-dir",
                str(reports),
            ]
            for name, value in (variables or {}).items():
                command += ["--var", f"{name}={value}"]
            log(f"end to end: racemap run --offline ({'warm' if n else 'first'} run) ...")
            start = time.perf_counter()
            done = subprocess.run(
                command, cwd=PROJECT_DIR, env=env, capture_output=True, text=True, check=False
            )
            wall = time.perf_counter() - start
            if done.returncode != 0:
                raise RacemapError(
                    "racemap run --offline failed in the benchmark: "
                    + (done.stderr.strip().splitlines() or ["?"])[-1]
                )
            summary = json.loads((reports / "summary.json").read_text())
            stages = summary["stage_seconds"]
            out["runs"].append(
                {
                    "run": "warm" if n else "first",
                    "wall_seconds": round(wall, 3),
                    "stage_seconds": stages,
                    "outside_stages_seconds": round(wall - sum(stages.values()), 3),
                    "slowest_stage": max(stages, key=stages.get),
                    "updates_applied": summary.get("updates_applied"),
                    "mapped": summary.get("mapped"),
                }
            )
    return out


# --------------------------------------------------------------------------------------------
# 4. Imports
# --------------------------------------------------------------------------------------------

_IMPORT_PROBE = """
import json, sys, time
t = time.perf_counter(); import racemap.cli; cli = time.perf_counter() - t
t = time.perf_counter(); import racemap.pipeline; pipeline = time.perf_counter() - t
heavy = sorted({m.split('.')[0] for m in sys.modules} & set(json.loads(sys.argv[1])))
print(json.dumps({"cli": cli, "pipeline": pipeline, "heavy": heavy}))
"""


def _importtime(module: str, env: dict) -> tuple[float, list[tuple[str, float]]]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    total, children, pending = 0.0, [], []
    for line in done.stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line)
        if not m:
            continue
        level, name, seconds = (len(m.group(2)) - 1) // 2, m.group(3), int(m.group(1)) / 1e6
        if level == 1:
            pending.append((name, seconds))
        elif level == 0:
            if name == module:
                total, children = seconds, pending
            pending = []
    heavy = sorted(children, key=lambda kv: -kv[1])[:4]
    return total, heavy


def bench_imports() -> dict:
    env = dict(os.environ)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", "pass"], cwd=PROJECT_DIR, env=env, capture_output=True, check=False
    )
    interpreter = time.perf_counter() - start
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE, json.dumps(HEAVY_MODULES)],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    probe = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else {}
    out = {
        "interpreter_seconds": round(interpreter, 3),
        "import_racemap_cli_seconds": round(probe.get("cli", 0.0), 3),
        "import_racemap_pipeline_seconds": round(probe.get("pipeline", 0.0), 3),
        "heavy_modules_after_importing_pipeline": probe.get("heavy"),
        "importtime": {},
    }
    for module in ("racemap.pipeline", "racemap.dbt", "racemap.validate", "racemap.loader"):
        total, top = _importtime(module, env)
        out["importtime"][module] = {
            "seconds": round(total, 3),
            "largest": {name: round(s, 3) for name, s in top},
        }
    # What the stages import when they run (lazily): measured, for the record.
    for module, stage in (
        ("dbt.cli.main", "dbt_build / migrate"),
        ("great_expectations", "validate_raw / validate"),
        ("papermill", "load"),
    ):
        total, _top = _importtime(module, env)
        out["importtime"][module] = {"seconds": round(total, 3), "needed_by": stage}
    return out


# --------------------------------------------------------------------------------------------
# Printing and the command
# --------------------------------------------------------------------------------------------


def _table(headers: list[str], rows: list[list]) -> str:
    cells = [[str(h) for h in headers]] + [["" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_report(report: dict) -> str:
    out = [f"racemap bench — {report['machine']['cpus']} cores, {report['date']}"]
    for part in ("requests", "scales", "end_to_end", "imports"):
        if isinstance(report.get(part), dict) and "error" in report[part]:
            out.append(f"{part.upper()}: FAILED: {report[part]['error']}")
    req = report.get("requests") or {}
    if "skipped" in req:
        out += ["", f"REQUESTS: skipped ({req['skipped']})"]
    elif req:
        r, ref = req["racemap"], req["reference"]
        label = " (extrapolated)" if ref["extrapolated"] else ""
        out += [
            "",
            f"REQUESTS — OpenF1 seasons {req['seasons'][0]}-{req['seasons'][-1]}, "
            f"{req['races_in_seasons']} unmapped races, rate limit {req['rate_limit']}",
            _table(
                ["", "races", "requests", "seconds", "mapped"],
                [
                    [
                        "racemap (load)",
                        req["races_in_seasons"],
                        r["requests"],
                        r["load_seconds"],
                        "",
                    ],
                    [
                        "racemap (load + dbt build + apply)",
                        req["races_in_seasons"],
                        r["requests"],
                        r["seconds"],
                        r["mapped"],
                    ],
                    [
                        "per-race reference (measured)",
                        ref["races"],
                        ref["requests"],
                        ref["seconds"],
                        ref["mapped"],
                    ],
                    [
                        f"per-race reference, all races{label}",
                        req["races_in_seasons"],
                        ref["full_requests"],
                        ref["full_seconds"],
                        "",
                    ],
                ],
            ),
            f"ratio reference/racemap: requests ×{req['ratio']['requests']}, "
            f"time ×{req['ratio']['seconds_vs_load']} vs the load, "
            f"×{req['ratio']['seconds_vs_load_build_apply']} vs load + build + apply{label}",
            f"same races and keys mapped (on the reference's races): "
            f"{ref['same_mapping_as_racemap']}; server applied the filters: "
            f"{ref['server_filtered']}",
        ]
    sc = report.get("scales") or {}
    if sc.get("results"):
        out += [
            "",
            "SCALES — dbt build (models + tests, seeds excluded) and apply per scale",
            _table(
                [
                    "scale",
                    "races",
                    "meetings",
                    "sessions",
                    "generate s",
                    "dbt build s",
                    "models s",
                    "mapping model s",
                    "apply s",
                    "mapped",
                    "consistent",
                ],
                [
                    [
                        f"x{r['scale']}",
                        r["races"],
                        r["meetings"],
                        r["sessions"],
                        r["generate_seconds"],
                        r["dbt_build_seconds"],
                        r["models_seconds"],
                        r["mapping_model_seconds"],
                        r["apply_seconds"],
                        r["by_reason"].get("mapped", 0),
                        r["mapped_matches_scale"],
                    ]
                    for r in sc["results"]
                ]
                + [
                    [
                        f"x{r['scale']}",
                        r["races"],
                        r["meetings"],
                        r["sessions"],
                        r["generate_seconds"],
                        f">{r['dbt_build_seconds']}",
                        "",
                        "",
                        "",
                        "",
                        "NOT FINISHED",
                    ]
                    for r in sc.get("unfinished", [])
                ],
            ),
            *(f"x{r['scale']}: {r['reason']}" for r in sc.get("unfinished", [])),
        ]
        if sc["growth"]:
            out += [
                "",
                "GROWTH between scales (time ratio; data grows by the 'data' factor)",
                _table(
                    ["from", "to", "data", "dbt build", "models", "mapping model", "apply"],
                    [
                        [
                            f"x{g['from']}",
                            f"x{g['to']}",
                            f"×{g['data']}",
                            f"×{g['dbt_build_seconds']}",
                            f"×{g['models_seconds']}",
                            f"×{g['mapping_model_seconds']}",
                            f"×{g['apply_seconds']}",
                        ]
                        for g in sc["growth"]
                    ],
                ),
            ]
        for label, item in sc.get("explain", {}).items():
            out += ["", f"PLAN: {label}"]
            out += ["  " + line for line in item["plan"]]
            out += ["  findings: " + "; ".join(item["findings"])]
    e2e = report.get("end_to_end") or {}
    if e2e.get("runs"):
        stages = list(e2e["runs"][-1]["stage_seconds"])
        out += [
            "",
            f"END TO END — racemap run --offline on {e2e['database']} (seconds)",
            _table(
                ["run", *stages, "outside stages", "total"],
                [
                    [
                        r["run"],
                        *(r["stage_seconds"].get(s) for s in stages),
                        r["outside_stages_seconds"],
                        r["wall_seconds"],
                    ]
                    for r in e2e["runs"]
                ],
            ),
            f"slowest stage (warm run): {e2e['runs'][-1]['slowest_stage']}",
        ]
    imp = report.get("imports") or {}
    if imp:
        out += [
            "",
            "IMPORTS (python -X importtime; seconds)",
            f"interpreter start {imp['interpreter_seconds']}, import racemap.cli "
            f"{imp['import_racemap_cli_seconds']}, import racemap.pipeline "
            f"{imp['import_racemap_pipeline_seconds']}; heavy libraries loaded by importing the "
            f"pipeline: {', '.join(imp['heavy_modules_after_importing_pipeline'] or []) or 'none'}",
            _table(
                ["module", "seconds", "largest imports / needed by"],
                [
                    [
                        name,
                        item["seconds"],
                        item.get("needed_by")
                        or ", ".join(f"{k} {v}" for k, v in item["largest"].items()),
                    ]
                    for name, item in imp["importtime"].items()
                ],
            ),
        ]
    return "\n".join(out)


def parse_scales(text: str | None) -> list[int]:
    if not text:
        return list(DEFAULT_SCALES)
    try:
        scales = sorted({int(part) for part in str(text).split(",") if part.strip()})
    except ValueError:
        raise RacemapError(f"--scales {text!r}: give integers, e.g. 1,10,100") from None
    if not scales or min(scales) < 1:
        raise RacemapError(f"--scales {text!r}: scales are copies of the real data, at least 1")
    return scales


def run(
    database_url: str | None = None,
    scales=DEFAULT_SCALES,
    reference_races: int | None = DEFAULT_REFERENCE_RACES,
    reports_dir: Path = DEFAULT_REPORTS_DIR,
    variables: dict | None = None,
    parts=("requests", "scales", "end_to_end", "imports"),
    keep: bool = False,
    max_build_seconds: float | None = DEFAULT_MAX_BUILD_SECONDS,
    log=print,
) -> dict:
    """Every measurement; returns the report (also written to ``<reports_dir>/bench.json``)."""
    variables = dict(variables or {})
    report: dict = {
        "date": datetime.now(UTC).date().isoformat(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "variables": variables,
    }
    saved_env = {k: os.environ.get(k) for k in ("PGHOST", "PGPORT", "PGUSER", "PGDATABASE")}
    with _isolated_tool_dirs():
        server = resolve_database(database_url)
        scratch = Scratch(server, keep=keep)
        report["scratch_databases"] = f"{scratch.prefix}_*" + (" (kept)" if keep else " (dropped)")
        try:
            with scratch._admin() as conn, conn.cursor() as cur:
                cur.execute("show server_version")
                report["machine"]["postgres"] = cur.fetchone()[0]
            measurements = {
                "requests": lambda: bench_requests(
                    scratch, reference_races=reference_races, variables=variables, log=log
                ),
                "scales": lambda: bench_scales(
                    scratch, scales, variables, max_build_seconds=max_build_seconds, log=log
                ),
                "end_to_end": lambda: bench_end_to_end(
                    scratch if database_url or os.environ.get("DATABASE_URL") else None,
                    variables,
                    log=log,
                ),
                "imports": bench_imports,
            }
            for name, measure in measurements.items():
                if name not in parts:
                    continue
                try:
                    report[name] = measure()
                except Exception as exc:  # one part failing still reports the others
                    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                    log(f"{name}: failed: {first}")
                    report[name] = {"error": first}
        finally:
            scratch.drop_all()
            for key, value in saved_env.items():
                if value is not None:
                    os.environ[key] = value
    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    (reports_dir / "bench.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    return report


def main(args) -> int:
    """``racemap bench`` (args from the CLI: database_url, var, reports_dir, scales)."""
    reference_races = getattr(args, "reference_races", None)
    if reference_races is None and os.environ.get("RACEMAP_BENCH_REFERENCE_RACES"):
        reference_races = int(os.environ["RACEMAP_BENCH_REFERENCE_RACES"])
    parts = getattr(args, "parts", None) or ("requests", "scales", "end_to_end", "imports")
    if isinstance(parts, str):
        parts = tuple(p.strip() for p in parts.split(","))
    report = run(
        database_url=getattr(args, "database_url", None),
        scales=parse_scales(getattr(args, "scales", None)),
        reference_races=reference_races,
        reports_dir=Path(getattr(args, "reports_dir", None) or DEFAULT_REPORTS_DIR),
        variables=parse_vars(getattr(args, "var", None)),
        parts=parts,
        keep=bool(getattr(args, "keep", False)),
        max_build_seconds=getattr(args, "max_build_seconds", DEFAULT_MAX_BUILD_SECONDS),
        log=lambda message: print(message, file=sys.stderr, flush=True),
    )
    print(format_report(report))
    failed = [p for p in parts if isinstance(report.get(p), dict) and "error" in report[p]]
    print(
        f"\nwritten to {Path(getattr(args, 'reports_dir', None) or DEFAULT_REPORTS_DIR)}/bench.json"
    )
    return 1 if failed else 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The bench's own options (``racemap bench`` adds --database-url and --var itself)."""
    parser.add_argument("--reports-dir", type=Path, default=DEFAULT_REPORTS_DIR)
    parser.add_argument(
        "--scales",
        default=",".join(map(str, DEFAULT_SCALES)),
        help="synthetic scales to build (default %(default)s)",
    )
    parser.add_argument(
        "--reference-races",
        type=int,
        help="limit the per-race reference to the first N races and extrapolate (labelled)",
    )
    parser.add_argument("--parts", help="requests,scales,end_to_end,imports (default: all)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch databases")
    parser.add_argument(
        "--max-build-seconds",
        type=float,
        default=DEFAULT_MAX_BUILD_SECONDS,
        help="cancel a scale's dbt build after this long and report it unfinished (0: never)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m racemap.bench", description=__doc__)
    parser.add_argument("--database-url")
    parser.add_argument("--var", action="append", default=[])
    add_arguments(parser)
    return parser


if __name__ == "__main__":
    try:
        sys.exit(main(_parser().parse_args()))
    except RacemapError as exc:
        print(f"racemap bench: {exc}", file=sys.stderr)
        sys.exit(1)
