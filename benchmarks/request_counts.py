"""Requests: racemap's load against the original design's per-race algorithm.

racemap asks OpenF1 once per endpoint per season. The original design asked per race: for each
unmapped race one meetings query by circuit and date, then one sessions query for that meeting's
Race. Both run against the same local OpenF1 server (``racemap.testing.openf1_server``) with
the same client-side rate limit (30 requests / 10 s), on a scratch database holding the demo
races. The per-race reference exists only here, for the comparison. ``reference_races`` limits it
to the first N races; the full figure is then *extrapolated* (and labelled so).
"""

from __future__ import annotations

import csv
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from racemap.db import Database
from racemap.errors import RacemapError
from racemap.mapping import dbt
from racemap.paths import PROJECT_DIR
from racemap.settings import RacesTable

from .scratch import (
    Scratch,
    local_openf1_client,
    mapped,
    prepare_demo_database,
    rows,
    using,
)

DEFAULT_SEASONS = (2023, 2024, 2025)
DEFAULT_REFERENCE_RACES = None  # all of them: ~140 requests, ~45 s at 30 requests / 10 s
RATE_MAX_REQUESTS = 30
RATE_PERIOD = 10.0
TOLERANCE = timedelta(hours=36)  # the models' default match_tolerance_hours


def _circuit_map() -> dict[str, int]:
    with (PROJECT_DIR / "seeds" / "circuit_map.csv").open(newline="", encoding="utf-8") as f:
        return {r["circuit_id"]: int(r["circuit_key"]) for r in csv.DictReader(f)}


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

        from racemap.openf1.client import RateLimiter

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
    found = rows(
        db,
        "select id, circuit_id, date, time from public.races"
        " where year = any(%s) and openf1_meeting_key is null order by date, id",
        (list(seasons),),
    )
    out = []
    for race_id, circuit_id, day, clock in found:
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
    """The per-race reference and racemap's load, on a scratch database with the demo races."""
    db = scratch.create("requests")
    with using(db):
        return _measure(db, seasons, reference_races, variables or {}, log)


def _measure(db: Database, seasons, reference_races: int | None, variables: dict, log) -> dict:
    from racemap.mapping.apply import apply_updates
    from racemap.openf1.loader import load_openf1
    from racemap.testing.openf1_server import serve

    prepare_demo_database(db, variables)
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
        with local_openf1_client(server.base_url) as client:
            loaded = load_openf1(db, list(seasons), client=client, refresh=True)
        load_seconds = time.perf_counter() - start
        dbt.build(variables)
        build_done = time.perf_counter()
        apply_updates(db, f"bench-{uuid.uuid4().hex[:8]}", RacesTable.from_vars(variables))
        racemap_seconds = time.perf_counter() - start
        racemap_server_requests = server.requests

    racemap_mapped = mapped(db, seasons)
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
