"""Race data: ``racemap sync`` (one request per endpoint per session) against a per-driver fetch.

The per-driver reference does what the recorders of the bundled race data did
(cwgbittencourt/F1.OpenF1.DatasetBuilder: ``?session_key=N&driver_number=D``): for each session,
the drivers list, then one request per driver for every endpoint keyed by a driver (laps,
stints, pit, position, intervals; 20 cars when OpenF1 lists none) and one for the others
(weather, race_control, overtakes). Both run against the local OpenF1 server serving the bundled
snapshot, with the same client-side rate limit (30 requests / 10 s), over every race and sprint
session of a season (mapped here straight from the snapshot's sessions: the mapping is not what
is measured). The reference runs on ``reference_sessions`` sessions and is *extrapolated* to the
season (and labelled so); it exists only here, for the comparison.
"""

from __future__ import annotations

import json
import time

from racemap.db import Database
from racemap.paths import SNAPSHOT_DIR

from .scratch import Scratch, local_openf1_client, using

DEFAULT_SEASON = 2025
DEFAULT_REFERENCE_SESSIONS = 2
RATE_MAX_REQUESTS = 30
RATE_PERIOD = 10.0
ASSUMED_DRIVERS = 20
KINDS = {"Race": "race", "Sprint": "sprint"}


def _season_sessions(season: int) -> list[dict]:
    sessions = json.loads((SNAPSHOT_DIR / "sessions.json").read_text(encoding="utf-8"))
    return sorted(
        (s for s in sessions if s.get("year") == season and s.get("session_name") in KINDS),
        key=lambda s: s["date_start"],
    )


def _map(db: Database, sessions: list[dict]) -> None:
    """racemap.race_openf1_sessions for ``sessions`` (race id: the meeting key)."""
    from racemap.openf1.loader import ensure_raw_tables, load_openf1

    ensure_raw_tables(db)
    load_openf1(db, sorted({s["year"] for s in sessions}), offline=True)
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(
            "create table racemap.race_openf1_sessions (race_id text, meeting_key integer,"
            " session_key integer, session_kind text, session_name text, starts_at timestamptz)"
        )
        for s in sessions:
            cur.execute(
                "insert into racemap.race_openf1_sessions values (%s, %s, %s, %s, %s, %s)",
                (
                    str(s["meeting_key"]),
                    s["meeting_key"],
                    s["session_key"],
                    KINDS[s["session_name"]],
                    s["session_name"],
                    s["date_start"],
                ),
            )


class PerDriverReference:
    """The recorders' way, for comparison only: one request per driver per endpoint."""

    def __init__(self, base_url: str):
        import httpx

        from racemap.openf1.http import RateLimiter

        self.limiter = RateLimiter(RATE_MAX_REQUESTS, RATE_PERIOD)
        self.http = httpx.Client(base_url=base_url.rstrip("/"), timeout=30.0)
        self.requests = 0
        self.rows = 0

    def close(self) -> None:
        self.http.close()

    def get(self, path: str, **params) -> list:
        while True:
            self.limiter.acquire()
            self.requests += 1
            response = self.http.get(path, params=params)
            if response.status_code == 429:
                time.sleep(float(response.headers.get("retry-after", "1")))
                continue
            body = response.json() if response.status_code == 200 else []
            self.rows += len(body)
            return body

    def fetch_session(self, session_key: int, chosen) -> None:
        drivers = [d["driver_number"] for d in self.get("/drivers", session_key=session_key)]
        numbers = drivers or list(range(1, ASSUMED_DRIVERS + 1))
        for endpoint in chosen:
            if endpoint.name == "drivers":
                continue
            if "driver_number" in endpoint.keys:
                for number in numbers:
                    self.get(endpoint.path, session_key=session_key, driver_number=number)
            else:
                self.get(endpoint.path, session_key=session_key)


def bench_race_data(
    scratch: Scratch,
    season: int = DEFAULT_SEASON,
    reference_sessions: int = DEFAULT_REFERENCE_SESSIONS,
    log=print,
) -> dict:
    db = scratch.create("race_data")
    with using(db):
        return _measure(db, season, reference_sessions, log)


def _measure(db: Database, season: int, reference_sessions: int, log) -> dict:
    from racemap.openf1 import endpoints
    from racemap.openf1.sync import SyncRun, sync_race_data
    from racemap.testing.openf1_server import serve

    sessions = _season_sessions(season)
    _map(db, sessions)
    chosen = endpoints.DEFAULT_RACE_DATA
    with serve(max_requests=RATE_MAX_REQUESTS, period=RATE_PERIOD) as server:
        log(f"race_data: racemap sync over {len(sessions)} sessions of {season} ...")
        server.reset()
        start = time.perf_counter()
        with local_openf1_client(
            server.base_url, max_requests=RATE_MAX_REQUESTS, period=RATE_PERIOD
        ) as client:
            synced = sync_race_data(SyncRun(db, [season], client=client, log=lambda _line: None))
            sync_seconds = time.perf_counter() - start
            sync_server_requests = server.requests
            # The second sync: settled but the endpoints that answered empty, asked once more
            # (one empty answer settles nothing); the third: every one settled, nothing asked.
            server.reset()
            start = time.perf_counter()
            again = sync_race_data(SyncRun(db, [season], client=client, log=lambda _line: None))
            second_seconds = time.perf_counter() - start
            start = time.perf_counter()
            third = sync_race_data(SyncRun(db, [season], client=client, log=lambda _line: None))
            third_seconds = time.perf_counter() - start

        sample = sessions[: max(1, reference_sessions)]
        log(f"race_data: per-driver reference over {len(sample)} of {len(sessions)} sessions ...")
        server.reset()
        reference = PerDriverReference(server.base_url)
        start = time.perf_counter()
        try:
            for s in sample:
                reference.fetch_session(s["session_key"], chosen)
        finally:
            reference.close()
        ref_seconds = time.perf_counter() - start

    scale = len(sessions) / len(sample)
    full_requests = round(reference.requests * scale)
    full_seconds = ref_seconds * scale
    return {
        "season": season,
        "sessions": len(sessions),
        "endpoints": list(endpoints.names(chosen)),
        "rate_limit": f"{RATE_MAX_REQUESTS} requests / {RATE_PERIOD:g} s (client side, both)",
        "racemap": {
            "requests": synced.requests,
            "server_requests": sync_server_requests,
            "requests_per_session": round(synced.requests / len(sessions), 2),
            "rows_loaded": synced.rows_loaded,
            "empty_answers": synced.count("empty"),
            "seconds": round(sync_seconds, 3),
            "second_sync_requests": again.requests,
            "second_sync_seconds": round(second_seconds, 3),
            "third_sync_requests": third.requests,
            "third_sync_seconds": round(third_seconds, 3),
        },
        "reference": {
            "sessions": len(sample),
            "requests": reference.requests,
            "rows": reference.rows,
            "seconds": round(ref_seconds, 3),
            "extrapolated": len(sample) != len(sessions),
            "full_requests": full_requests,
            "full_seconds": round(full_seconds, 3),
        },
        "ratio": {
            "requests": round(full_requests / synced.requests, 1) if synced.requests else None,
            "seconds": round(full_seconds / sync_seconds, 1) if sync_seconds else None,
        },
    }
