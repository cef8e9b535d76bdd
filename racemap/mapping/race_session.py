"""From a race to its OpenF1 meeting and Grand Prix race session: the usage example of the
original design, for notebooks (notebooks/race_session.ipynb)."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg2 import sql

from racemap.errors import RacemapError
from racemap.mapping.lookup import RaceKeys, race_keys, session_key_for_race
from racemap.openf1 import endpoints
from racemap.openf1.client import OpenF1Client
from racemap.settings import RacesTable

LOADED = "loaded by racemap run"


@dataclass
class RaceSession:
    keys: RaceKeys
    meeting: dict
    session: dict
    source: str  # "OpenF1 API" or LOADED


def _loaded(conn, endpoint: str, key: str, value: int) -> list[dict]:
    """The OpenF1 records of ``endpoint`` whose ``key`` is ``value``, as the runs loaded them
    into its raw table (whatever the season, offline or live)."""
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL("select record from {} where {} = %s").format(
                endpoints.get(endpoint).relation, sql.Identifier(key)
            ),
            (value,),
        )
        return [row[0] for row in cur.fetchall()]


def _one(records: list[dict], what: str, source: str) -> dict:
    if len(records) == 1:
        return records[0]
    if source == LOADED:
        raise RacemapError(
            f"the raw tables hold {len(records)} records for {what}, expected one: "
            "run racemap run over the race's season"
        )
    raise RacemapError(f"OpenF1 has {len(records)} records for {what}, expected one")


def race_session(
    conn,
    race_id,
    offline: bool = False,
    client: OpenF1Client | None = None,
    races: RacesTable | None = None,
    kind: str = "race",
) -> RaceSession:
    """Look the race's keys up (NotMapped with the reason when it has none), then fetch the
    meeting and the session of ``kind`` of its weekend (the race by default; NotMapped when the
    weekend has none, "no sprint session in meeting ..."): from OpenF1 (two requests), or
    offline as the runs loaded them into ``raw.openf1_meetings`` and ``raw.openf1_sessions``
    (any season a run loaded, from OpenF1 or the bundled snapshot)."""
    keys = race_keys(conn, race_id, races)
    session_key = (
        keys.session_key if kind == "race" else session_key_for_race(conn, race_id, kind, races)
    )
    if offline:
        meetings = _loaded(conn, "meetings", "meeting_key", keys.meeting_key)
        sessions = _loaded(conn, "sessions", "session_key", session_key)
        source = LOADED
    else:
        own = client is None
        client = client or OpenF1Client()
        try:
            meetings = client.query("meetings", meeting_key=keys.meeting_key)
            sessions = client.query("sessions", session_key=session_key)
        finally:
            if own:
                client.close()
        source = "OpenF1 API"
    meeting = _one(meetings, f"meeting {keys.meeting_key}", source)
    session = _one(sessions, f"session {session_key}", source)
    if session.get("meeting_key") != keys.meeting_key:
        raise RacemapError(
            f"session {session_key} belongs to meeting {session.get('meeting_key')}, "
            f"not {keys.meeting_key}"
        )
    return RaceSession(keys, meeting, session, source)
