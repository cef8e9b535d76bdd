"""The three lookups of the original service: race -> meeting key, race -> session key, and
meeting key -> race, for notebooks and the command line. (The same exist in SQL for the
application: racemap.meeting_key_for_race(), racemap.session_key_for_race(),
racemap.race_for_meeting(), created by the dbt macro create_lookup_functions.)

Keys are read from the races table, where the application reads them; when a race has none,
the reason comes from racemap.race_openf1_mapping.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg2 import sql

from .errors import RacemapError
from .settings import RacesTable


class NotMapped(RacemapError):
    """No keys for this race or meeting; ``reason`` is one of the fixed words when known."""

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class RaceKeys:
    race_id: str
    meeting_key: int
    session_key: int


def _require_tables(conn, t: RacesTable) -> None:
    """One clear line when the races table or racemap's mapping is not there (yet)."""
    from .db import relation_exists

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


def meeting_key_for_race(conn, race_id, races: RacesTable | None = None) -> int:
    return race_keys(conn, race_id, races).meeting_key


def session_key_for_race(conn, race_id, races: RacesTable | None = None) -> int:
    return race_keys(conn, race_id, races).session_key


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
