"""Loading OpenF1 meetings and sessions into ``raw.openf1_*``.

Each (endpoint, season) is one transaction: the good records are upserted on their key, the bad
ones land in ``raw.openf1_rejects`` with the reason, and ``raw.openf1_loads`` records the fetch.
A failure anywhere in it rolls back that season's endpoint only; what was loaded before stays.
"""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from psycopg2.extras import Json, execute_values

from . import records
from .db import Database
from .errors import RacemapError
from .openf1 import ENDPOINTS, FetchResult, OpenF1Client, read_snapshot

FIRST_SEASON = 2023
SNAPSHOT_URL_PREFIX = "snapshot:"

RAW_DDL = """
create schema if not exists raw;
create table if not exists raw.openf1_meetings (
    meeting_key integer primary key,
    meeting_name text,
    meeting_official_name text,
    meeting_code text,
    location text,
    country_key integer,
    country_code text,
    country_name text,
    country_flag text,
    circuit_key integer,
    circuit_short_name text,
    circuit_type text,
    circuit_info_url text,
    circuit_image text,
    gmt_offset text,
    date_start timestamptz,
    date_end timestamptz,
    is_cancelled boolean,
    year integer not null,
    record jsonb not null,
    loaded_at timestamptz not null default now()
);
create table if not exists raw.openf1_sessions (
    session_key integer primary key,
    meeting_key integer not null,
    session_name text,
    session_type text,
    location text,
    country_key integer,
    country_code text,
    country_name text,
    circuit_key integer,
    circuit_short_name text,
    gmt_offset text,
    date_start timestamptz,
    date_end timestamptz,
    is_cancelled boolean,
    year integer not null,
    record jsonb not null,
    loaded_at timestamptz not null default now()
);
create index if not exists openf1_sessions_circuit_start_idx
    on raw.openf1_sessions (circuit_key, date_start);
create index if not exists openf1_sessions_meeting_idx on raw.openf1_sessions (meeting_key);
create table if not exists raw.openf1_loads (
    load_id bigserial primary key,
    run_id text,
    endpoint text not null,
    season integer not null,
    url text not null,
    status text not null,
    http_status integer,
    requests integer not null default 0,
    rows_received integer not null default 0,
    rows_loaded integer not null default 0,
    rows_rejected integer not null default 0,
    error text,
    started_at timestamptz not null,
    finished_at timestamptz not null default now()
);
create table if not exists raw.openf1_rejects (
    reject_id bigserial primary key,
    load_id bigint references raw.openf1_loads (load_id),
    endpoint text not null,
    season integer,
    reason text not null,
    payload jsonb,
    rejected_at timestamptz not null default now()
);
"""


def ensure_raw_tables(conn) -> None:
    with conn.cursor() as cur:
        cur.execute(RAW_DDL)


def parse_seasons(text: str | None, today: datetime | None = None) -> list[int]:
    """``"2023-2025"``, ``"2024"`` or ``"2023,2025"``; default every season 2023..this year."""
    this_year = (today or datetime.now(UTC)).year
    if not text:
        return list(range(FIRST_SEASON, this_year + 1))
    seasons: set[int] = set()
    try:
        for part in str(text).split(","):
            part = part.strip()
            if "-" in part:
                low, high = (int(p) for p in part.split("-", 1))
                if low > high:
                    raise ValueError
                seasons.update(range(low, high + 1))
            else:
                seasons.add(int(part))
    except ValueError:
        raise RacemapError(
            f"--seasons {text!r}: give a year, a range like 2023-2025, or a list"
        ) from None
    if min(seasons) < 1950 or max(seasons) > this_year + 1:
        raise RacemapError(f"--seasons {text!r}: seasons must lie between 1950 and {this_year + 1}")
    return sorted(seasons)


@dataclass
class SeasonLoad:
    endpoint: str
    season: int
    status: str
    rows_loaded: int = 0
    rows_rejected: int = 0
    requests: int = 0


@dataclass
class LoadResult:
    run_id: str
    loads: list[SeasonLoad] = field(default_factory=list)
    requests: int = 0

    @property
    def rows_loaded(self) -> int:
        return sum(x.rows_loaded for x in self.loads)

    @property
    def rows_rejected(self) -> int:
        return sum(x.rows_rejected for x in self.loads)


def _upsert_sql(endpoint: str) -> str:
    table = f"raw.openf1_{endpoint}"
    key = records.KEYS[endpoint]
    cols = records.columns(endpoint) + ["record"]
    updates = ", ".join(f"{c} = excluded.{c}" for c in cols if c != key)
    # Unchanged records are left alone, so a re-run rewrites nothing and keeps loaded_at.
    return (
        f"insert into {table} ({', '.join(cols)}) values %s "
        f"on conflict ({key}) do update set {updates}, loaded_at = now() "
        f"where {table}.record is distinct from excluded.record"
    )


def store(conn, fetched: FetchResult, run_id: str, started_at: datetime) -> SeasonLoad:
    """Write one fetched (endpoint, season) in the caller's transaction."""
    good, bad = records.validate(fetched.endpoint, fetched.records)
    wrong_season = [(raw, p) for raw, p in good if p.year != fetched.season]
    good = [(raw, p) for raw, p in good if p.year == fetched.season]
    bad += [
        (raw, f"year {p.year} in a response for season {fetched.season}") for raw, p in wrong_season
    ]
    with conn.cursor() as cur:
        cur.execute(
            "insert into raw.openf1_loads (run_id, endpoint, season, url, status, http_status,"
            " requests, rows_received, rows_loaded, rows_rejected, started_at)"
            " values (%s, %s, %s, %s, 'ok', %s, %s, %s, %s, %s, %s) returning load_id",
            (
                run_id,
                fetched.endpoint,
                fetched.season,
                fetched.url,
                fetched.status,
                fetched.requests,
                len(fetched.records),
                len(good),
                len(bad),
                started_at,
            ),
        )
        load_id = cur.fetchone()[0]
        if good:
            rows = [records.as_row(fetched.endpoint, p) + [Json(raw)] for raw, p in good]
            execute_values(cur, _upsert_sql(fetched.endpoint), rows, page_size=500)
        if bad:
            execute_values(
                cur,
                "insert into raw.openf1_rejects (load_id, endpoint, season, reason, payload)"
                " values %s",
                [
                    (load_id, fetched.endpoint, fetched.season, reason, Json(raw))
                    for raw, reason in bad
                ],
            )
    return SeasonLoad(fetched.endpoint, fetched.season, "ok", len(good), len(bad), fetched.requests)


def _record_failure(db: Database, run_id, endpoint, season, url, requests, error, started_at):
    """Audit a failed fetch or write in its own transaction: the failed one rolled back."""
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(
            "insert into raw.openf1_loads (run_id, endpoint, season, url, status, requests,"
            " error, started_at) values (%s, %s, %s, %s, 'failed', %s, %s, %s)",
            (run_id, endpoint, season, url, requests, error[:2000], started_at),
        )


def season_is_settled(conn, season: int, today: datetime | None = None) -> bool:
    """True when ``season`` need not be fetched again: it is over and was loaded after it ended.

    Over: a season before this year whose last loaded session has ended. Loaded after it ended:
    the latest fetch of each endpoint succeeded with rows and started in a later year. That
    matters because legacy OpenF1 lists only sessions that have happened: a season loaded while
    it was running looks over (its last *known* session has ended) yet lacks its last races.
    A latest fetch that failed (a killed load) makes the season due again, so the next run
    completes it. Snapshot loads (``--offline``) do not count: the bundled snapshot is legacy
    and ends in November 2025. The current season, and any later one, is always fetched.
    """
    today = today or datetime.now(UTC)
    if season >= today.year:
        return False
    with conn.cursor() as cur:
        cur.execute(
            "select count(*) from ("
            "  select distinct on (endpoint) endpoint, status, rows_loaded, started_at"
            "  from raw.openf1_loads where season = %s and url not like %s"
            "  order by endpoint, load_id desc"
            ") latest where status = 'ok' and rows_loaded > 0 and started_at >= %s",
            (season, f"{SNAPSHOT_URL_PREFIX}%", datetime(season + 1, 1, 1, tzinfo=UTC)),
        )
        if cur.fetchone()[0] < len(ENDPOINTS):
            return False
        cur.execute(
            "select coalesce(max(coalesce(date_end, date_start)) < %s, false)"
            " from raw.openf1_sessions where year = %s",
            (today, season),
        )
        return bool(cur.fetchone()[0])


def _progress(total: int):
    """A tqdm bar on a terminal; nothing in CI, in notebooks (papermill) or when piped."""
    from tqdm import tqdm

    quiet = not sys.stderr.isatty() or bool(os.environ.get("CI")) or "ipykernel" in sys.modules
    return tqdm(total=total, desc="OpenF1", unit="fetch", disable=quiet, leave=False)


def load_openf1(
    db: Database,
    seasons: list[int],
    offline: bool = False,
    client: OpenF1Client | None = None,
    refresh: bool = False,
    run_id: str | None = None,
    today: datetime | None = None,
) -> LoadResult:
    """Load meetings and sessions of ``seasons``: two fetches a season at the most.

    Settled seasons (see :func:`season_is_settled`) are skipped unless ``refresh``; ``today``
    pins the calendar for tests. The first failing fetch stops the load with a RacemapError,
    after it is audited; what earlier fetches committed stays.
    """
    run_id = run_id or uuid.uuid4().hex
    result = LoadResult(run_id)
    with db.transaction() as conn:
        ensure_raw_tables(conn)
        skip = (
            set()
            if refresh or offline
            else {s for s in seasons if season_is_settled(conn, s, today)}
        )
    own_client = client is None and not offline
    if own_client:
        client = OpenF1Client()
    requests_before = client.requests_made if client is not None else 0
    try:
        with _progress(len(seasons) * len(ENDPOINTS)) as bar:
            for season in seasons:
                for endpoint in ENDPOINTS:
                    bar.set_postfix_str(f"{endpoint} {season}")
                    if season in skip:
                        result.loads.append(SeasonLoad(endpoint, season, "skipped"))
                    else:
                        result.loads.append(
                            _load_one(db, client, endpoint, season, offline, run_id)
                        )
                    bar.update()
    finally:
        if client is not None:
            result.requests = client.requests_made - requests_before
        if own_client:
            client.close()
    return result


def _fetch(client: OpenF1Client | None, endpoint: str, season: int, offline: bool) -> FetchResult:
    return read_snapshot(endpoint, season) if offline else client.fetch(endpoint, season)


def _load_one(db, client, endpoint, season, offline, run_id) -> SeasonLoad:
    """Fetch one (endpoint, season) and write it in one transaction; audit a failure of either."""
    started_at = datetime.now(UTC)
    before = client.requests_made if client else 0
    url = (
        f"{SNAPSHOT_URL_PREFIX}{endpoint}.json?year={season}"
        if offline
        else client.safe_url(endpoint, season)
    )
    try:
        fetched = _fetch(client, endpoint, season, offline)
        with db.transaction() as conn:
            return store(conn, fetched, run_id, started_at)
    except Exception as exc:
        made = (client.requests_made - before) if client else 0
        message = str(exc) if isinstance(exc, RacemapError) else f"{type(exc).__name__}: {exc}"
        # The audit must not hide the real error (e.g. when the database itself went away).
        with contextlib.suppress(Exception):
            _record_failure(db, run_id, endpoint, season, url, made, message, started_at)
        raise
