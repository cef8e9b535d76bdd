"""The three lookups of the original service: race -> meeting key, race -> session key,
meeting key -> race. Read from racemap.race_openf1_mapping (the reason when unmapped)."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import RacemapError


class NotMapped(RacemapError):
    """The race exists but has no mapping; ``reason`` is one of the fixed words."""

    def __init__(self, what: str, reason: str | None):
        super().__init__(f"not mapped: {reason or 'unknown'} ({what})")
        self.reason = reason


@dataclass(frozen=True)
class RaceKeys:
    race_id: str
    meeting_key: int
    session_key: int
    race_name: str | None = None
    season: int | None = None


def _mapping(conn, where: str, value) -> tuple | None:
    with conn.cursor() as cur:
        cur.execute(
            "select race_id, meeting_key, session_key, status, reason, race_name, season"
            f" from racemap.race_openf1_mapping where {where} = %s",
            (value,),
        )
        return cur.fetchone()


def race_keys(conn, race_id) -> RaceKeys:
    """Meeting and session key of a race; ``NotMapped`` with the reason otherwise."""
    row = _mapping(conn, "race_id", str(race_id))
    if row is None:
        raise RacemapError(f"no race with id {race_id!r} in the mapping (run racemap run first)")
    rid, meeting, session, status, reason, name, season = row
    if status != "mapped":
        raise NotMapped(f"race {rid}", reason)
    return RaceKeys(rid, meeting, session, name, season)


def meeting_key_for_race(conn, race_id) -> int:
    return race_keys(conn, race_id).meeting_key


def session_key_for_race(conn, race_id) -> int:
    return race_keys(conn, race_id).session_key


def race_for_meeting(conn, meeting_key: int) -> RaceKeys:
    row = _mapping(conn, "meeting_key", int(meeting_key))
    if row is None:
        raise NotMapped(f"meeting {meeting_key}", "no race is mapped to this meeting")
    rid, meeting, session, _status, _reason, name, season = row
    return RaceKeys(rid, meeting, session, name, season)
