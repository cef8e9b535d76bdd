"""Loading OpenF1 into ``raw.openf1_*``: the schedule (meetings, sessions), then the race-weekend
data (session_result, starting_grid). The race data of ``racemap sync`` (racemap/openf1/sync.py)
goes through the same :func:`store`, one (endpoint, session) at a time.

Each (endpoint, season) is one transaction: the good records are upserted on their key, the bad
ones land in ``raw.openf1_rejects`` with the reason, and ``raw.openf1_loads`` records the fetch.
A failure anywhere in it rolls back that season's endpoint only; what was loaded before stays.

Requests: meetings and sessions are one ``?year=`` request each per season. session_result and
starting_grid have no ``year``: each is one request per season over the season's meeting-key
range (``?meeting_key>=first&meeting_key<=last``, OpenF1's range filter,
https://github.com/br-g/openf1/pull/252), keeping the rows whose meeting is of that season.
"""

from __future__ import annotations

import contextlib
import sys
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from psycopg2 import sql
from psycopg2.extras import Json, execute_values
from pydantic import ValidationError

from racemap import migrations
from racemap.db import Database
from racemap.errors import RacemapError, UsageError, first_line
from racemap.openf1 import endpoints
from racemap.openf1.client import FetchResult, OpenF1Client, build_query
from racemap.openf1.endpoints import Endpoint, Fetch
from racemap.openf1.settling import (
    SCHEDULE_ENDPOINTS,
    SNAPSHOT_URL_PREFIX,
    meeting_key_range,
    season_is_settled,
    weekend_is_settled,
)
from racemap.openf1.snapshot import read_snapshot
from racemap.reporting import plural
from racemap.settings import Environment, load_environment

WEEKEND_ENDPOINTS = endpoints.names(endpoints.SEASON_MEETINGS)  # session_result, starting_grid
ALL_ENDPOINTS = SCHEDULE_ENDPOINTS + WEEKEND_ENDPOINTS


def ensure_raw_tables(conn) -> None:
    """racemap's tables at the newest migration (:func:`racemap.migrations.upgrade`): ``conn``
    is a psycopg2 connection or a Database; the upgrade commits on a connection of its own."""
    migrations.upgrade(conn)


@dataclass
class EndpointLoad:
    """What one fetch of an endpoint did: for a season (the loader) or a session (the sync)."""

    endpoint: str
    status: str  # ok, empty, skipped (settled), not_started
    season: int | None = None
    session_key: int | None = None
    rows_loaded: int = 0
    rows_rejected: int = 0
    rows_removed: int = 0
    requests: int = 0
    removals_skipped: str | None = None  # why the fetch removed nothing it no longer listed
    repeated: str | None = None  # records whose key a later one of the answer repeated


@dataclass
class LoadResult:
    run_id: str
    loads: list[EndpointLoad] = field(default_factory=list)
    requests: int = 0

    def count(self, status: str) -> int:
        return sum(1 for x in self.loads if x.status == status)

    @property
    def rows_loaded(self) -> int:
        return sum(x.rows_loaded for x in self.loads)

    @property
    def rows_rejected(self) -> int:
        return sum(x.rows_rejected for x in self.loads)


def _upsert_sql(endpoint: Endpoint) -> sql.Composed:
    """Insert or update on the key; ``fetched_at`` says when OpenF1 last listed the record,
    ``loaded_at`` when its content last changed (or it was listed again after a removal), and a
    listed record is not removed. A snapshot never overwrites a record fetched live. A race
    page is rendered again when its rows' ``loaded_at`` or ``removed_at`` moves
    (racemap/race_data.py)."""
    table = endpoint.relation
    cols = [*endpoint.columns, "record"]
    updates = sql.SQL(", ").join(
        sql.SQL("{0} = excluded.{0}").format(sql.Identifier(c))
        for c in cols
        if c not in endpoint.keys
    )
    return sql.SQL(
        "insert into {table} ({cols}, source, fetched_at) values %s"
        " on conflict ({keys}) do update set {updates}, source = excluded.source,"
        " fetched_at = excluded.fetched_at, removed_at = null, loaded_at = case"
        " when {table}.record is distinct from excluded.record"
        " or {table}.removed_at is not null then now()"
        " else {table}.loaded_at end"
        " where {table}.source = 'snapshot' or excluded.source = 'live'"
        " returning 1"
    ).format(
        table=table,
        cols=sql.SQL(", ").join(map(sql.Identifier, cols)),
        keys=sql.SQL(", ").join(map(sql.Identifier, endpoint.keys)),
        updates=updates,
    )


# What a listed key may take in the removal's hash table, with room to spare: PostgreSQL counts
# a key's columns and a tuple header (about 40 bytes for car_data's three columns); newer
# releases add the hash entry's own overhead.
HASHED_KEY_BYTES = 128
# PostgreSQL's least work_mem: keys that fit in it fit any server's setting.
LEAST_WORK_MEM_KB = 64


def _listed_keys(endpoint: Endpoint, answer: list) -> tuple[list[tuple], int]:
    """The keys of every record of an answer, rejected ones too: a record OpenF1 still lists,
    even one that fails validation (a key sent as "1229"), is not removed. And how many records
    have a key that cannot be read at all (missing, "Bahrain", not an object): any of them
    might be a stored row, so such an answer removes nothing."""
    listed, unreadable = [], 0
    for raw in answer:
        try:
            key = endpoint.key_model.model_validate(raw)
        except ValidationError:
            unreadable += 1
            continue
        listed.append(tuple(getattr(key, k) for k in endpoint.keys))
    return listed, unreadable


def _scope(fetched: FetchResult) -> tuple[sql.Composable, dict]:
    """The rows of ``raw.openf1_*`` a fetch answers for: its season's, or its session's."""
    fetch = endpoints.get(fetched.endpoint).fetch
    if fetch is Fetch.SEASON:
        return sql.SQL("t.year = %(season)s"), {"season": fetched.season}
    if fetch is Fetch.SEASON_MEETINGS:
        return sql.SQL(
            "t.meeting_key in (select meeting_key from raw.openf1_meetings where year = %(season)s)"
        ), {"season": fetched.season}
    return sql.SQL("t.session_key = %(session_key)s"), {"session_key": fetched.session_key}


def _mark_removed(cur, fetched: FetchResult, source: str, orphans: list) -> tuple[int, str | None]:
    """Rows of ``fetched``'s (endpoint, season) or (endpoint, session) that its answer no longer
    lists get ``removed_at = now()``; they are kept. A live answer is the authority on what
    OpenF1 lists: the rows it removes become ``live``, so that no snapshot brings them back; a
    snapshot only removes rows that came from a snapshot. An empty answer removes nothing: an
    outage or a filter gone wrong is not a season (or a session) that vanished. Nor does an
    answer with a record whose key cannot be read: that record might be any stored row.
    ``orphans`` (records of a meeting or session OpenF1 does not list, :func:`_in_season`)
    count as not listed: a session leaves with its meeting, a result with its session.

    (rows removed, why none was when removals were skipped: the audit's ``removals_skipped``).
    """
    if not fetched.records:
        return 0, None
    endpoint = endpoints.get(fetched.endpoint)
    in_scope, params = _scope(fetched)
    leaving = {id(raw) for raw in orphans}
    listed, unreadable = _listed_keys(
        endpoint, [raw for raw in fetched.records if id(raw) not in leaving]
    )
    if unreadable:
        return 0, (
            f"removed nothing: {plural(unreadable, 'record')} whose key could not be read"
            " (raw.openf1_rejects)"
        )
    arrays = {f"k{i}": [values[i] for values in listed] for i in range(len(endpoint.keys))}
    names = sql.SQL(", ").join(map(sql.Identifier, endpoint.keys))
    unnest = sql.SQL(", ").join(
        sql.SQL("%({})s::{}[]").format(sql.SQL(f"k{i}"), sql.SQL(kind))
        for i, kind in enumerate(endpoint.key_types)
    )
    # NOT IN over the keys (never null on either side): a hashed subplan. NOT EXISTS over the
    # unnest was a nested loop, rows times listed keys (seconds for a season's results). The
    # subplan is hashed only while PostgreSQL expects the keys to fit in work_mem (times
    # hash_mem_multiplier); past that every row scans the whole list. At the default 4 MB that
    # was about 210,000 keys, and a session's car_data or location is over 500,000 (a sample
    # every 270 ms per car): a 250,000-record answer took over 150 s, a whole session had not
    # finished after 7 minutes. So the statement gets the work_mem its keys need (their estimate
    # is exact: the arrays are constants), never less than the server's, for this statement only
    # (an answer of a few hundred keys needs no setting and costs no round trip for one).
    needed_kb = -(-len(listed) * HASHED_KEY_BYTES // 1024)
    server_work_mem = None
    if needed_kb > LEAST_WORK_MEM_KB:
        cur.execute(
            "select current_setting('work_mem'), set_config('work_mem',"
            " greatest(pg_size_bytes(current_setting('work_mem')) / 1024, %s)::text || 'kB',"
            " true)",
            (needed_kb,),
        )
        server_work_mem = cur.fetchone()[0]
    cur.execute(
        sql.SQL(
            "update {table} t set removed_at = now(),"
            " source = case when %(source)s = 'live' then 'live' else t.source end"
            " where {in_scope} and t.removed_at is null"
            " and (%(source)s = 'live' or t.source = 'snapshot')"
            " and ({t_keys}) not in (select {names} from unnest({unnest}) as l({names}))"
        ).format(
            table=endpoint.relation,
            in_scope=in_scope,
            t_keys=sql.SQL(", ").join(sql.Identifier("t", k) for k in endpoint.keys),
            names=names,
            unnest=unnest,
        ),
        {"source": source, **params, **arrays},
    )
    removed = cur.rowcount
    if server_work_mem is not None:
        cur.execute("select set_config('work_mem', %s, true)", (server_work_mem,))
    return removed, None


def _row(endpoint: Endpoint, parsed, raw: dict) -> list:
    values = endpoint.row(parsed)
    for i, name in enumerate(endpoint.columns):
        if name in endpoint.json_columns and values[i] is not None:
            values[i] = Json(values[i])
    return values + [Json(raw)]


def _in_season(conn, fetched: FetchResult, good: list) -> tuple[list, list, list]:
    """(rows of ``fetched.season``, rejects, orphans) of validated records.

    Meetings and sessions carry their ``year``; a session whose meeting is not loaded (missing
    from the meetings answer, or no longer listed: ``removed_at``) is a reject. A
    session_result / starting_grid row belongs to its meeting's season (``raw.openf1_meetings``;
    through ``raw.openf1_sessions`` when the record names no meeting, which then fills
    ``meeting_key``): a row of another loaded season (meeting keys are not chronological, so a
    key range may reach one) is left to that season's load; a row whose meeting, or session, is
    not loaded (or no longer listed) is a reject. Those rejects are also the orphans: records
    that leave with their meeting or session (:func:`_mark_removed`), so that what the staging
    models read (the rows still listed) holds together.
    """
    season = fetched.season
    fetch = endpoints.get(fetched.endpoint).fetch
    if fetch is Fetch.SESSION:
        return _in_session(conn, fetched, good)
    with conn.cursor() as cur:
        cur.execute("select meeting_key, year from raw.openf1_meetings where removed_at is null")
        years = dict(cur.fetchall())
        cur.execute(
            "select session_key, meeting_key from raw.openf1_sessions where removed_at is null"
        )
        meeting_of = dict(cur.fetchall())
    kept, bad, orphans = [], [], []

    def orphan(raw, reason):
        bad.append((raw, reason))
        orphans.append(raw)

    if fetch is Fetch.SEASON:
        endpoint = endpoints.get(fetched.endpoint)
        of_a_meeting = "meeting_key" in endpoint.columns and "meeting_key" not in endpoint.keys
        for raw, p in good:
            if p.year != season:
                bad.append((raw, f"year {p.year} in a response for season {season}"))
            elif of_a_meeting and p.meeting_key not in years:
                orphan(raw, f"meeting_key {p.meeting_key} is not a loaded meeting")
            else:
                kept.append((raw, p))
        return kept, bad, orphans
    for raw, p in good:
        if p.meeting_key is None:
            p.meeting_key = meeting_of.get(p.session_key)
        if p.meeting_key is None:
            orphan(raw, f"session_key {p.session_key} is not a loaded session (no meeting_key)")
        elif p.meeting_key not in years:
            orphan(raw, f"meeting_key {p.meeting_key} is not a loaded meeting")
        elif years[p.meeting_key] != season:
            continue
        elif p.session_key not in meeting_of:
            orphan(raw, f"session_key {p.session_key} is not a loaded session")
        else:
            kept.append((raw, p))
    return kept, bad, orphans


def _in_session(conn, fetched: FetchResult, good: list) -> tuple[list, list, list]:
    """(rows of ``fetched.session_key``, rejects, no orphans): a record of another session in
    the answer is a reject; a record naming no meeting gets its session's
    (``raw.openf1_sessions``)."""
    with conn.cursor() as cur:
        cur.execute(
            "select meeting_key from raw.openf1_sessions where session_key = %s",
            (fetched.session_key,),
        )
        found = cur.fetchone()
    meeting_key = found[0] if found else None
    kept, bad = [], []
    for raw, p in good:
        if p.session_key != fetched.session_key:
            reason = f"session_key {p.session_key} in a response for session {fetched.session_key}"
            bad.append((raw, reason))
            continue
        if p.meeting_key is None:
            p.meeting_key = meeting_key
        kept.append((raw, p))
    return kept, bad, []


def store(
    conn,
    fetched: FetchResult,
    run_id: str,
    started_at: datetime,
    source: str | None = None,
    fetched_at: datetime | None = None,
) -> EndpointLoad:
    """Write one fetched (endpoint, season) in the caller's transaction.

    ``source`` is ``live`` or ``snapshot`` (default: from the audited URL); ``fetched_at``
    defaults to now.
    """
    if source is None:
        source = "snapshot" if fetched.url.startswith(SNAPSHOT_URL_PREFIX) else "live"
    fetched_at = fetched_at or datetime.now(UTC)
    endpoint = endpoints.get(fetched.endpoint)
    validated = endpoint.validate_answer(fetched.records)
    good, misplaced, orphans = _in_season(conn, fetched, validated.good)
    bad = validated.rejects + misplaced
    repeated = _repeated(validated)
    # Each record as its row, and the validated models gone before the writes: a session's
    # car_data is over 500,000 of them at about 1.2 KiB each (racemap bench --parts memory).
    rows = [_row(endpoint, p, raw) + [source, fetched_at] for raw, p in good]
    del validated, good
    with conn.cursor() as cur:
        cur.execute(
            "insert into raw.openf1_loads (run_id, endpoint, season, session_key, url, status,"
            " http_status, requests, rows_received, rows_loaded, rows_rejected, started_at)"
            " values (%s, %s, %s, %s, %s, 'ok', %s, %s, %s, %s, %s, %s) returning load_id",
            (
                run_id,
                fetched.endpoint,
                fetched.season,
                fetched.session_key,
                fetched.url,
                fetched.status,
                fetched.requests,
                len(fetched.records),
                len(rows),
                len(bad),
                started_at,
            ),
        )
        load_id = cur.fetchone()[0]
        written = 0
        if rows:
            written = len(
                execute_values(
                    cur, _upsert_sql(endpoint).as_string(cur), rows, page_size=500, fetch=True
                )
            )
        removed, removals_skipped = _mark_removed(cur, fetched, source, orphans)
        cur.execute(
            "update raw.openf1_loads set rows_loaded = %s, rows_removed = %s,"
            " removals_skipped = %s where load_id = %s",
            (written, removed, removals_skipped, load_id),
        )
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
    return EndpointLoad(
        fetched.endpoint,
        "ok",
        season=fetched.season,
        session_key=fetched.session_key,
        rows_loaded=written,
        rows_rejected=len(bad),
        rows_removed=removed,
        requests=fetched.requests,
        removals_skipped=removals_skipped,
        repeated=repeated,
    )


def _repeated(validated) -> str | None:
    """The line's words for the records an answer repeated the key of, None when none did."""
    repeats = validated.identical + validated.conflicting
    if not repeats:
        return None
    kinds = []
    if validated.identical:
        kinds.append(f"{validated.identical} the same")
    if validated.conflicting:
        kinds.append(f"{validated.conflicting} with other values (raw.openf1_rejects)")
    return (
        f"{plural(repeats, 'record')} repeated the key of a later one in the answer, the last"
        f" of each loaded: {', '.join(kinds)}"
    )


def record_failure(
    db: Database, run_id, endpoint, season, url, requests, error, started_at, session_key=None
):
    """Audit a failed fetch or write in its own transaction: the failed one rolled back."""
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(
            "insert into raw.openf1_loads (run_id, endpoint, season, session_key, url, status,"
            " requests, error, started_at) values (%s, %s, %s, %s, %s, 'failed', %s, %s, %s)",
            (run_id, endpoint, season, session_key, url, requests, error[:2000], started_at),
        )


AUDIT_COLUMNS = (
    "endpoint",
    "season",
    "status",
    "requests",
    "rows_received",
    "rows_loaded",
    "rows_rejected",
    "rows_removed",
    "removals_skipped",
    "url",
    "error",
)


def load_audit(db: Database, run_id: str | None) -> list[dict]:
    """The rows of ``raw.openf1_loads`` of one run, as dicts of :data:`AUDIT_COLUMNS`: what the
    load notebook shows of a load ``racemap run`` made (the URLs carry no credentials). Without
    a run id there is no load to show: UsageError (the notebook's one line)."""
    if run_id is None:
        raise UsageError(
            "load=False shows the load of run_id: give run_id (a racemap run's id: racemap "
            "status names the last), or load=True to load"
        )
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(
            f"select {', '.join(AUDIT_COLUMNS)} from raw.openf1_loads where run_id = %s"
            " order by load_id",
            (run_id,),
        )
        return [dict(zip(AUDIT_COLUMNS, row, strict=True)) for row in cur.fetchall()]


def _progress(total: int, desc: str = "OpenF1", ci: bool = False):
    """A tqdm bar on a terminal; nothing in CI, in notebooks (papermill) or when piped."""
    from tqdm import tqdm

    quiet = not sys.stderr.isatty() or ci or "ipykernel" in sys.modules
    return tqdm(total=total, desc=desc, unit="fetch", disable=quiet, leave=False)


def load_openf1(
    db: Database,
    seasons: list[int],
    offline: bool = False,
    client: OpenF1Client | None = None,
    refresh: bool = False,
    run_id: str | None = None,
    today: datetime | None = None,
    settle_days: float | None = None,
    environment: Environment | None = None,
) -> LoadResult:
    """Load ``seasons``: meetings and sessions of every season first, then session_result and
    starting_grid; one request per endpoint per season at the most.

    Settled seasons (see :func:`season_is_settled`, :func:`weekend_is_settled`) are skipped
    unless ``refresh``; ``today`` pins the calendar for tests; ``settle_days`` defaults to
    ``OPENF1_SETTLE_DAYS`` (14). A season with no loaded meeting has no weekend data to ask
    for. The first failing fetch stops the load with a RacemapError, after it is audited; what
    earlier fetches committed stays.
    """
    run_id = run_id or uuid.uuid4().hex
    env = environment or load_environment()  # the caller's settings, else read here once
    settle_days = env.openf1_settle_days if settle_days is None else settle_days
    result = LoadResult(run_id)
    with db.transaction() as conn:
        ensure_raw_tables(conn)
        skip = (
            set()
            if refresh or offline
            else {s for s in seasons if season_is_settled(conn, s, today)}
        )
    with (
        counted_client(client, offline, result, env) as client,
        _progress(len(seasons) * len(ALL_ENDPOINTS), ci=env.ci) as bar,
    ):
        for season in seasons:
            for endpoint in SCHEDULE_ENDPOINTS:
                bar.set_postfix_str(f"{endpoint} {season}")
                if season in skip:
                    result.loads.append(EndpointLoad(endpoint, "skipped", season=season))
                else:
                    result.loads.append(_load_one(db, client, endpoint, season, offline, run_id))
                bar.update()
        for season in seasons:
            for endpoint in WEEKEND_ENDPOINTS:
                bar.set_postfix_str(f"{endpoint} {season}")
                with db.transaction() as conn:
                    params = meeting_key_range(conn, season)
                    settled = not (refresh or offline) and weekend_is_settled(
                        conn, endpoint, season, today, settle_days
                    )
                if params is None or settled:
                    result.loads.append(EndpointLoad(endpoint, "skipped", season=season))
                else:
                    result.loads.append(
                        _load_one(db, client, endpoint, season, offline, run_id, params)
                    )
                bar.update()
    return result


@contextmanager
def counted_client(client: OpenF1Client | None, offline: bool, result: LoadResult, env=None):
    """The client to fetch with: ``client``, else one of its own (closed at the end), none
    offline; the requests it makes in the block are counted into ``result.requests``."""
    own = client is None and not offline
    if own:
        client = OpenF1Client(environment=env)
    before = client.requests_made if client is not None else 0
    try:
        yield client
    finally:
        if client is not None:
            result.requests = client.requests_made - before
        if own:
            client.close()


def _fetch(client, endpoint: str, season: int, offline: bool, params) -> FetchResult:
    if offline:
        return read_snapshot(endpoint, season)
    if params is None:
        return client.fetch(endpoint, season)
    return client.fetch_where(endpoint, season, params)


def _audit_url(client, endpoint: str, season: int, offline: bool, params) -> str:
    if offline:
        return f"{SNAPSHOT_URL_PREFIX}{endpoint}.json?year={season}"
    if params is None:
        return client.safe_url(endpoint, season)
    url = httpx.URL(f"{client.base_url}/{endpoint}?{build_query(params)}")
    return str(url.copy_with(username=None, password=None))


def _load_one(db, client, endpoint, season, offline, run_id, params=None) -> EndpointLoad:
    """Fetch one (endpoint, season) and write it in one transaction; audit a failure of either."""
    url = _audit_url(client, endpoint, season, offline, params)
    return fetch_and_store(
        db,
        client,
        lambda: _fetch(client, endpoint, season, offline, params),
        run_id,
        offline,
        audit=(endpoint, season, url, None),
    )


def fetch_and_store(db, client, fetch, run_id, offline, audit) -> EndpointLoad:
    """``fetch()`` then :func:`store` in one transaction; a failure of either is audited in
    ``raw.openf1_loads`` (``audit``: endpoint, season, url, session key) and raised."""
    started_at = datetime.now(UTC)
    before = client.requests_made if client else 0
    try:
        fetched = fetch()
        fetched_at = datetime.now(UTC)
        with db.transaction() as conn:
            return store(
                conn,
                fetched,
                run_id,
                started_at,
                source="snapshot" if offline else "live",
                fetched_at=fetched_at,
            )
    except (Exception, KeyboardInterrupt) as exc:  # Ctrl-C, SIGTERM (Interrupted) too
        made = (client.requests_made - before) if client else 0
        # One line: a database's error runs on for lines (LINE 1: ..., DETAIL, CONTEXT).
        message = first_line(exc)
        if isinstance(exc, KeyboardInterrupt):
            message = "interrupted (Ctrl-C or SIGTERM): the next run fetches it again"
        elif not isinstance(exc, RacemapError):
            message = f"{type(exc).__name__}: {message}"
        endpoint, season, url, key = audit
        # The audit must not hide the real error (e.g. when the database itself went away).
        with contextlib.suppress(Exception):
            record_failure(db, run_id, endpoint, season, url, made, message, started_at, key)
        raise
