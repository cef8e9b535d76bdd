"""The lookups of the original service for notebooks and the command line: race -> meeting
key, race -> session key (the race, or any session of its weekend by kind), and meeting key ->
race.

One implementation: each call runs the SQL function the application calls too
(racemap.race_keys(race_id), racemap.session_key_for_race(race_id [, kind]),
racemap.race_for_meeting(meeting_key), created by the dbt macro create_lookup_functions on every
build, for the races table that build read). A race without keys raises ``not mapped: <reason>``
there, which becomes :class:`NotMapped` here with the reason word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import psycopg2
import psycopg2.errors

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


def session_kind(text) -> str:
    """A session kind as a person may type it (``Sprint``, ``sprint qualifying``,
    ``practice-1``): one of SESSION_KINDS, else one line naming them."""
    kind = re.sub(r"[\s-]+", "_", str(text).strip().lower())
    if kind not in SESSION_KINDS:
        raise RacemapError(f"unknown session kind {text!r}: one of {', '.join(SESSION_KINDS)}")
    return kind


@dataclass(frozen=True)
class RaceKeys:
    race_id: str
    meeting_key: int
    session_key: int


def _require_tables(conn, t: RacesTable) -> None:
    """One clear line when the races table or racemap's mapping is not there (yet)."""
    from racemap.db import relation_exists
    from racemap.runtime import require_races_table

    require_races_table(conn, t)
    if not relation_exists(conn, "racemap", "race_openf1_mapping"):
        raise RacemapError("racemap has not mapped this database yet: run `racemap run` first")


def race_keys(conn, race_id, races: RacesTable | None = None) -> RaceKeys:
    """Meeting and session key of a race; :class:`NotMapped` with the reason otherwise."""
    meeting_key, session_key = _lookup(
        conn,
        races,
        "select meeting_key, session_key from racemap.race_keys(%s)",
        (str(race_id),),
    )
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
    kind = session_kind(kind)
    meeting_key, session_key = _lookup(
        conn,
        races,
        "select k.meeting_key, racemap.session_key_for_race(%s, %s)"
        " from racemap.race_keys(%s) as k",
        (str(race_id), kind, str(race_id)),
    )
    return SessionKey(str(race_id), meeting_key, session_key, kind)


def race_for_meeting(conn, meeting_key: int, races: RacesTable | None = None) -> str:
    """The id of the race that holds ``meeting_key``; :class:`NotMapped` when none does."""
    return _lookup(conn, races, "select racemap.race_for_meeting(%s)", (int(meeting_key),))[0]


def _lookup(conn, races: RacesTable | None, statement: str, params: tuple) -> tuple:
    """One row of a lookup function; its ``not mapped`` exception as :class:`NotMapped`.

    Inside a transaction a savepoint keeps the caller's transaction usable after a miss.
    """
    _require_tables(conn, races or RacesTable.from_vars(None))
    savepoint = not conn.autocommit
    with conn.cursor() as cur:
        if savepoint:
            cur.execute("savepoint racemap_lookup")
        try:
            cur.execute(statement, params)
            return cur.fetchone()
        except (psycopg2.errors.RaiseException, psycopg2.errors.UndefinedFunction) as exc:
            if savepoint:
                cur.execute("rollback to savepoint racemap_lookup")
            if isinstance(exc, psycopg2.errors.UndefinedFunction):
                raise RacemapError(
                    "racemap's lookup functions are missing: run `racemap run` first"
                ) from None
            message = exc.diag.message_primary or str(exc).strip()
        if not message.startswith("not mapped: "):
            raise RacemapError(message)
        detail = message.removeprefix("not mapped: ")
        if detail.startswith("no race holds"):
            reason = None
        elif detail.startswith("no "):
            reason = "no_session"
        elif detail.startswith("cancelled"):
            reason = "cancelled"
        else:
            reason = detail.split(" ", 1)[0]
        raise NotMapped(message, reason)


def race_laps(conn, race_id, session_kind: str = "race") -> list[dict]:
    """The laps of the race's ``session_kind`` session (default the Grand Prix race), one dict per
    driver and lap, ordered by car number and lap, under the application's race and driver ids.

    Calls the SQL function racemap.race_laps (macros/create_lookup_functions.sql), the one
    implementation, in a savepoint: a race without such a session raises :class:`NotMapped`,
    anything else :class:`RacemapError`, and ``conn``'s transaction stays usable.
    """
    import psycopg2

    with conn.cursor() as cur:
        cur.execute("savepoint racemap_race_laps")
        try:
            cur.execute("select * from racemap.race_laps(%s, %s)", (str(race_id), session_kind))
            columns = [d.name for d in cur.description]
            rows = [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]
        except psycopg2.Error as exc:
            cur.execute("rollback to savepoint racemap_race_laps")
            message = (exc.diag.message_primary or str(exc)).strip()
            if exc.pgcode == "42883":  # undefined_function
                raise RacemapError(
                    "racemap.race_laps() does not exist in this database: run `racemap sync`"
                ) from None
            if message.startswith("not mapped"):
                raise NotMapped(message) from None
            raise RacemapError(f"race laps of race {race_id}: {message}") from None
        cur.execute("release savepoint racemap_race_laps")
    return rows
