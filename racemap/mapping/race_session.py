"""From a race to its OpenF1 meeting and Grand Prix race session: the usage example of the
original design, for notebooks (notebooks/race_session.ipynb)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from racemap.errors import RacemapError
from racemap.mapping.lookup import RaceKeys, race_keys
from racemap.openf1.client import OpenF1Client
from racemap.paths import SNAPSHOT_DIR
from racemap.settings import RacesTable


@dataclass
class RaceSession:
    keys: RaceKeys
    meeting: dict
    session: dict
    source: str  # "OpenF1 API" or "bundled snapshot"


def _from_snapshot(endpoint: str, key: str, value: int) -> list[dict]:
    records = json.loads((SNAPSHOT_DIR / f"{endpoint}.json").read_text(encoding="utf-8"))
    return [r for r in records if r.get(key) == value]


def _one(records: list[dict], what: str) -> dict:
    if len(records) != 1:
        raise RacemapError(f"OpenF1 has {len(records)} records for {what}, expected one")
    return records[0]


def race_session(
    conn,
    race_id,
    offline: bool = False,
    client: OpenF1Client | None = None,
    races: RacesTable | None = None,
) -> RaceSession:
    """Look the race's keys up (NotMapped with the reason when it has none), then fetch the
    meeting and the session: from OpenF1 (two requests), or the bundled snapshot offline."""
    keys = race_keys(conn, race_id, races)
    if offline:
        meetings = _from_snapshot("meetings", "meeting_key", keys.meeting_key)
        sessions = _from_snapshot("sessions", "session_key", keys.session_key)
        source = "bundled snapshot"
    else:
        own = client is None
        client = client or OpenF1Client()
        try:
            meetings = client.query("meetings", meeting_key=keys.meeting_key)
            sessions = client.query("sessions", session_key=keys.session_key)
        finally:
            if own:
                client.close()
        source = "OpenF1 API"
    meeting = _one(meetings, f"meeting {keys.meeting_key}")
    session = _one(sessions, f"session {keys.session_key}")
    if session.get("meeting_key") != keys.meeting_key:
        raise RacemapError(
            f"session {keys.session_key} belongs to meeting {session.get('meeting_key')}, "
            f"not {keys.meeting_key}"
        )
    return RaceSession(keys, meeting, session, source)
