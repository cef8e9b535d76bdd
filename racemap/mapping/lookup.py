"""The lookups of the original service: race -> meeting key, race -> session key (the race, or
any session of its weekend by kind), and meeting key -> race, for notebooks and the command
line. (The same exist in SQL for the application: racemap.meeting_key_for_race(),
racemap.session_key_for_race(race_id [, kind]), racemap.race_for_meeting(), created by the dbt
macro create_lookup_functions.)

Keys are read from the races table, where the application reads them; when a race has none,
the reason comes from racemap.race_openf1_mapping. The other sessions of a weekend come from
racemap.race_openf1_sessions, for the meeting the race holds.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg2 import sql

from racemap.errors import RacemapError
from racemap.settings import RacesTable


class NotMapped(RacemapError):
    """No keys for this race or meeting; ``reason`` is one of the fixed words when known."""

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.reason = reason


SESSION_KINDS = (
    "practice_1",
    "practice_2",
    "practice_3",
    "sprint_qualifying",
    "sprint",
    "qualifying",
    "race",
)


@dataclass(frozen=True)
class RaceKeys:
    race_id: str
    meeting_key: int
    session_key: int


def _require_tables(conn, t: RacesTable) -> None:
    """One clear line when the races table or racemap's mapping is not there (yet)."""
    from racemap.db import relation_exists

    if not relation_exists(conn, t.schema, t.table):
        raise RacemapError(
            f"table {t.name} does not exist in this database: name the races table with "
            "--var races_schema=... --var races_table=..., or check DATABASE_URL"
        )
    if not relation_exists(conn, "racemap", "race_openf1_mapping"):
        raise RacemapError("racemap has not mapped this database yet: run `racemap run` first")


def race_keys(conn, race_id, races: RacesTable | None = None) -> RaceKeys:
    """Meeting and session key of a race; :class:`NotMapped` with the reason otherwise."""
    t = races or RacesTable.from_vars(None)
    _require_tables(conn, t)
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "select r.openf1_meeting_key, r.openf1_session_key, m.status, m.reason"
                " from {rel} r left join racemap.race_openf1_mapping m"
                " on m.race_id = cast(r.{id} as text)"
                " where cast(r.{id} as text) = %s"
            ).format(rel=t.relation, id=t.id),
            (str(race_id),),
        )
        row = cur.fetchone()
    if row is None:
        raise RacemapError(f"no race with id {race_id!r} in {t.name}")
    meeting_key, session_key, status, reason = row
    if meeting_key is None or session_key is None:
        if status == "mapped":  # computed, but the apply did not write it (dry run, held back)
            reason = "not_applied"
        reason = reason or "not_yet_mapped"
        raise NotMapped(f"not mapped: {reason} (race {race_id})", reason)
    return RaceKeys(str(race_id), meeting_key, session_key)


def session_key_for_race(conn, race_id, kind: str = "race", races: RacesTable | None = None) -> int:
    """The session key of the race's ``kind`` of session (default the Grand Prix race)."""
    return race_session_key(conn, race_id, kind, races).session_key


@dataclass(frozen=True)
class SessionKey:
    race_id: str
    meeting_key: int
    session_key: int
    kind: str


def race_session_key(
    conn, race_id, kind: str = "race", races: RacesTable | None = None
) -> SessionKey:
    """The ``kind`` session (one of :data:`SESSION_KINDS`) of the weekend the race holds.

    ``race`` is the session key the races table holds; the others come from
    racemap.race_openf1_sessions for the race's meeting. :class:`NotMapped` when the race holds
    no keys, its weekend has no such session (a sprint on a weekend without one) or it is
    cancelled.
    """
    if kind not in SESSION_KINDS:
        raise RacemapError(f"unknown session kind {kind!r}: one of {', '.join(SESSION_KINDS)}")
    keys = race_keys(conn, race_id, races)
    if kind == "race":
        return SessionKey(keys.race_id, keys.meeting_key, keys.session_key, kind)
    with conn.cursor() as cur:
        cur.execute("select to_regclass('racemap.race_openf1_sessions') is not null")
        if not cur.fetchone()[0]:
            raise RacemapError(
                "racemap.race_openf1_sessions does not exist: run `racemap run` first"
            )
        cur.execute(
            "select session_key, is_cancelled from racemap.race_openf1_sessions"
            " where meeting_key = %s and session_kind = %s"
            " order by is_cancelled, starts_at limit 1",
            (keys.meeting_key, kind),
        )
        row = cur.fetchone()
    if row is None:
        raise NotMapped(
            f"not mapped: no {kind} session in meeting {keys.meeting_key} (race {race_id})",
            "no_session",
        )
    session_key, is_cancelled = row
    if is_cancelled:
        raise NotMapped(
            f"not mapped: cancelled, the {kind} session {session_key} of meeting "
            f"{keys.meeting_key} (race {race_id})",
            "cancelled",
        )
    return SessionKey(keys.race_id, keys.meeting_key, session_key, kind)


def race_for_meeting(conn, meeting_key: int, races: RacesTable | None = None) -> str:
    """The id of the race that holds ``meeting_key``; :class:`NotMapped` when none does."""
    t = races or RacesTable.from_vars(None)
    _require_tables(conn, t)
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL("select cast({id} as text) from {rel} where openf1_meeting_key = %s").format(
                rel=t.relation, id=t.id
            ),
            (int(meeting_key),),
        )
        row = cur.fetchone()
    if row is None:
        raise NotMapped(f"not mapped: no race holds meeting {meeting_key}")
    return row[0]
