"""``racemap sync``: the race data (laps, stints, pit stops, ...) of the mapped races.

Which sessions: those of ``racemap.race_openf1_sessions`` (the mart a ``racemap run`` builds:
race_id, meeting_key, session_key, session_kind) of the chosen seasons or race ids and session
kinds (race and sprint unless told otherwise). What for each: every race-data endpoint of the
registry (racemap/openf1/endpoints.py) but the large car_data and location, which are fetched
only when named, for named races.

One request per endpoint per session (``?session_key=N``), never per driver or per lap, through
the OpenF1 client (rate limit, retries, OAuth credentials, one line when OpenF1 refuses). Each
(endpoint, session) is written in its own transaction by the loader's :func:`store` (upsert on
the key, rejects quarantined in ``raw.openf1_rejects`` with their reason, ``raw.openf1_loads``
recording the fetch with its ``session_key``), so a killed sync keeps what it wrote and the next
one resumes: a session whose data has settled (:func:`session_is_settled`, read from
``raw.openf1_loads``) is not fetched again unless ``refresh``. An empty answer is a line saying
OpenF1 has nothing for that session yet; it removes nothing already loaded, and only a second
one after the session's settle window settles it (the next sync asks again); an answer with a
reject settles nothing.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from racemap import runtime
from racemap.db import Database, relation_exists
from racemap.errors import RacemapError, UsageError
from racemap.mapping.lookup import SESSION_KINDS
from racemap.openf1 import endpoints
from racemap.openf1.client import OpenF1Client
from racemap.openf1.endpoints import Endpoint
from racemap.openf1.loader import (
    EndpointLoad,
    LoadResult,
    _progress,
    counted_client,
    ensure_raw_tables,
    fetch_and_store,
)
from racemap.openf1.settling import (
    SNAPSHOT_URL_PREFIX,
    session_is_settled,
)
from racemap.openf1.snapshot import read_session_snapshot
from racemap.reporting import plural
from racemap.settings import Environment, load_environment

DEFAULT_KINDS = ("race", "sprint")


@dataclass(frozen=True)
class MappedSession:
    race_id: str
    meeting_key: int
    session_key: int
    session_kind: str
    season: int
    starts_at: datetime | None
    ends_at: datetime | None

    @property
    def label(self) -> str:
        return f"session {self.session_key} (race {self.race_id} {self.session_kind})"


@dataclass
class SyncResult(LoadResult):
    sessions: list[MappedSession] = field(default_factory=list)

    def summary(self) -> str:
        rejected = f"{self.rows_rejected} rejected"
        if self.rows_rejected:  # their fetches do not settle: the next sync asks again
            rejected += ": why in raw.openf1_rejects; asked again by the next sync"
        return (
            f"synced {plural(len(self.sessions), 'session')}: "
            f"{plural(self.count('ok'), 'fetch', 'fetches')} loaded "
            f"{plural(self.rows_loaded, 'row')} ({rejected}), "
            f"{self.count('empty')} empty, {self.count('skipped')} settled, "
            f"{self.count('not_started')} not started; {plural(self.requests, 'OpenF1 request')}"
        )


# -- what to sync ----------------------------------------------------------------------------------
def parse_kinds(text: str | None) -> tuple[str, ...]:
    """``race,sprint`` (the default) or any of the session kinds racemap knows."""
    if not text:
        return DEFAULT_KINDS
    kinds = tuple(dict.fromkeys(k.strip() for k in text.split(",") if k.strip()))
    unknown = [k for k in kinds if k not in SESSION_KINDS]
    if unknown or not kinds:
        raise UsageError(f"--sessions {text!r}: choose among {','.join(SESSION_KINDS)}")
    return kinds


def parse_endpoints(text: str | None, race_ids: Sequence[str] = ()) -> tuple[Endpoint, ...]:
    """``laps,stints`` or every race-data endpoint but car_data and location (the default);
    those two are large, so they are fetched only for named races (``--race-id``)."""
    if not text:
        return endpoints.DEFAULT_RACE_DATA
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    known = endpoints.names(endpoints.RACE_DATA)
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise UsageError(f"--endpoints {text!r}: choose among {','.join(known)}")
    chosen = tuple(endpoints.get(n) for n in names)
    large = [e.name for e in chosen if e.on_request]
    if large and not race_ids:
        raise UsageError(
            f"--endpoints {','.join(large)}: large, fetched only for named races: add --race-id"
        )
    return chosen


def require_mapped_races(conn) -> None:
    """A racemap run has mapped this database's races: a sync of a database it has not (the
    wrong DATABASE_URL, a run yet to come) stops in one line."""
    if not relation_exists(conn, "racemap", "race_openf1_sessions"):
        raise RacemapError(
            "no mapped races in this database (racemap.race_openf1_sessions is missing): "
            "run racemap run first"
        )


def mapped_sessions(
    conn, seasons: Sequence[int] | None, race_ids: Sequence[str], kinds: Sequence[str]
) -> list[MappedSession]:
    """The sessions of the mapped races to sync, in time order (the caller, :func:`sync_race_data`,
    has checked :func:`require_mapped_races`, before it upgraded racemap's tables). A race named
    in ``race_ids`` with none of them stops the sync in one line: its sessions' seasons when
    ``seasons`` leaves them out, else ask racemap lookup why."""
    found = _mapped_sessions(conn, seasons, race_ids, kinds)
    missing = sorted(set(map(str, race_ids)) - {s.race_id for s in found})
    if not missing:
        return found
    elsewhere: dict[str, set[int]] = {}
    if seasons is not None:
        for s in _mapped_sessions(conn, None, missing, kinds):
            elsewhere.setdefault(s.race_id, set()).add(s.season)
    kind = "/".join(kinds)
    parts = []
    if outside := sorted(elsewhere):
        years = ", ".join(map(str, sorted({y for race in outside for y in elsewhere[race]})))
        named = (
            f"race {outside[0]}: its {kind} session is"
            if len(outside) == 1
            else f"races {', '.join(outside)}: their {kind} sessions are"
        )
        parts.append(
            f"{named} in {years}, not in --seasons {','.join(map(str, seasons))}: leave"
            " --seasons out (a named race needs none) or add the season"
        )
    if unmapped := [race for race in missing if race not in elsewhere]:
        parts.append(
            f"race {', '.join(unmapped)}: no mapped {kind} session (racemap lookup --race-id ID"
            " says why; --sessions picks other kinds)"
        )
    raise RacemapError("; ".join(parts))


def _mapped_sessions(
    conn, seasons: Sequence[int] | None, race_ids: Sequence[str], kinds: Sequence[str]
) -> list[MappedSession]:
    with conn.cursor() as cur:
        cur.execute(
            "select m.race_id::text, m.meeting_key, m.session_key, m.session_kind,"
            " coalesce(s.year, extract(year from m.starts_at)::int),"
            " coalesce(s.date_start, m.starts_at), coalesce(s.date_end, s.date_start, m.starts_at)"
            " from racemap.race_openf1_sessions m"
            " left join raw.openf1_sessions s on s.session_key = m.session_key"
            " where m.session_key is not null and m.session_kind = any(%(kinds)s)"
            " and (%(all_races)s or m.race_id::text = any(%(race_ids)s))"
            " and (%(all_seasons)s"
            "  or coalesce(s.year, extract(year from m.starts_at)::int) = any(%(seasons)s))"
            " order by 6 nulls last, m.session_key",
            {
                "kinds": list(kinds),
                "all_races": not race_ids,
                "race_ids": [str(r) for r in race_ids],
                "all_seasons": seasons is None,
                "seasons": list(seasons or []),
            },
        )
        return [MappedSession(*row) for row in cur.fetchall()]


# -- the sync --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SyncRun:
    """One sync's request, built once by its caller (``racemap sync``, ``racemap run
    --race-data``, the bench, a test): :func:`sync_race_data`'s one argument. ``env`` is the
    settings the caller read; built without one, the environment is read once, here."""

    db: Database
    seasons: Sequence[int] | None = None  # None: every season (with race_ids, say)
    race_ids: Sequence[str] = ()
    kinds: Sequence[str] = DEFAULT_KINDS
    chosen: Sequence[Endpoint] = endpoints.DEFAULT_RACE_DATA
    offline: bool = False  # the bundled snapshot, else ``client``
    client: OpenF1Client | None = None
    refresh: bool = False  # fetch settled sessions again
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    today: datetime | None = None  # pins the calendar (tests)
    settle_days: float | None = None  # default: OPENF1_SETTLE_DAYS (14)
    log: Callable[[str], None] = print
    env: Environment = field(default_factory=load_environment)


def sync_race_data(run: SyncRun) -> SyncResult:
    """Load the ``chosen`` endpoints of the mapped sessions; see the module's docstring.

    The first failing fetch stops the sync with a RacemapError, after it is audited; what
    earlier fetches committed stays. No run lock is taken here: the caller holds it (``racemap
    sync``, ``racemap run``)."""
    db, env, log, offline, chosen = run.db, run.env, run.log, run.offline, run.chosen
    settle_days = env.openf1_settle_days if run.settle_days is None else run.settle_days
    now = run.today or datetime.now(UTC)
    with db.transaction() as conn:  # before racemap's tables are made or upgraded
        require_mapped_races(conn)
        runtime.require_writable(conn, db.display)
    ensure_raw_tables(db)
    with db.transaction() as conn:
        sessions = mapped_sessions(conn, run.seasons, run.race_ids, run.kinds)
    result = SyncResult(run.run_id, sessions=sessions)
    if not sessions:
        seasons = f" in {', '.join(map(str, run.seasons))}" if run.seasons else ""
        log(
            f"no mapped {'/'.join(run.kinds)} session{seasons} to sync: racemap lookup --race-id"
            " ID says why a race is not mapped (--seasons and --sessions choose others)"
        )
        return result
    settled = set() if run.refresh or offline else _settled(db, sessions, chosen, now, settle_days)
    where = "in the bundled snapshot" if offline else "from OpenF1 yet"
    unrecorded = 0  # offline, a session the snapshot has no recording of is counted, no line
    with (
        counted_client(run.client, offline, result, env) as client,
        _progress(len(sessions) * len(chosen), "race data", env.ci) as bar,
    ):
        for session in sessions:
            empty = []
            for endpoint in chosen:
                bar.set_postfix_str(f"{endpoint.name} {session.session_key}")
                key = session.session_key
                if (endpoint.name, key) in settled:
                    load = EndpointLoad(endpoint.name, "skipped", session_key=key)
                else:
                    load = _sync_one(db, client, endpoint, session, offline, run.run_id, now)
                if load.status == "empty":
                    empty.append(endpoint.name)
                if load.repeated:
                    log(f"{endpoint.name} of {session.label}: {load.repeated}")
                if load.removals_skipped:
                    log(f"{endpoint.name} of {session.label}: {load.removals_skipped}")
                result.loads.append(load)
                bar.update()
            if offline and len(empty) == len(chosen):
                unrecorded += 1
            elif empty:  # one line a session, not one an endpoint
                log(f"no {', '.join(empty)} for {session.label} {where}")
    if unrecorded:
        log(
            f"the bundled snapshot records no race data of {plural(unrecorded, 'session')}:"
            f" racemap sync without --offline fetches {'it' if unrecorded == 1 else 'them'}"
            " from OpenF1"
        )
    not_started = {x.session_key for x in result.loads if x.status == "not_started"}
    if not_started:
        have = "has" if len(not_started) == 1 else "have"
        log(
            f"{plural(len(not_started), 'session')} {have} not started yet: nothing to fetch"
            f" for {'it' if len(not_started) == 1 else 'them'}"
        )
    return result


def _settled(db, sessions, chosen, now, settle_days) -> set[tuple[str, int]]:
    """The (endpoint, session_key) pairs not to fetch again, read in one transaction."""
    with db.transaction() as conn:
        return {
            (e.name, s.session_key)
            for s in sessions
            for e in chosen
            if session_is_settled(conn, e.name, s.session_key, s.ends_at, now, settle_days)
        }


def _sync_one(db, client, endpoint, session, offline, run_id, now) -> EndpointLoad:
    name, key = endpoint.name, session.session_key
    if session.starts_at is not None and session.starts_at > now:
        return EndpointLoad(name, "not_started", session_key=key)
    url = (
        f"{SNAPSHOT_URL_PREFIX}{endpoint.snapshot_file}?session_key={key}"
        if offline
        else _safe(f"{client.base_url}/{name}?session_key={key}")
    )

    answered = []

    def fetch():
        if offline:
            fetched = read_session_snapshot(name, session.season, key)
        else:
            fetched = client.fetch_session(name, session.season, key)
        answered.extend(fetched.records)
        return fetched

    stored = fetch_and_store(
        db, client, fetch, run_id, offline, audit=(name, session.season, url, key)
    )
    return dataclasses.replace(stored, status="ok" if answered else "empty")


def _safe(url: str) -> str:
    """A URL without its user and password, for the audit table."""
    return str(httpx.URL(url).copy_with(username=None, password=None))
