"""The bundled OpenF1 snapshot (data/openf1/snapshot/), read one season (or, for race data,
one session) of one endpoint at a time, as if OpenF1 had answered: ``racemap run --offline``,
``racemap sync --offline``. Each endpoint's file is named in the registry
(racemap/openf1/endpoints.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from racemap.errors import RacemapError
from racemap.openf1 import endpoints
from racemap.openf1.client import FetchResult
from racemap.openf1.endpoints import Fetch
from racemap.paths import SNAPSHOT_DIR


def _read_json(path: Path) -> list:
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RacemapError(f"cannot read the OpenF1 snapshot {path}: {exc}") from None
    return records if isinstance(records, list) else [records]


def snapshot_seasons(snapshot_dir: Path = SNAPSHOT_DIR) -> Callable[[dict], int | None]:
    """The season of a ``session_result`` / ``starting_grid`` record, which has no ``year``: its
    meeting's year in the snapshot's meetings.json (through sessions.json when the record names
    its session only); None when the snapshot does not know it."""
    years = {
        m.get("meeting_key"): m.get("year")
        for m in _read_json(Path(snapshot_dir) / "meetings.json")
        if isinstance(m, dict)
    }
    meeting_of = {
        s.get("session_key"): s.get("meeting_key")
        for s in _read_json(Path(snapshot_dir) / "sessions.json")
        if isinstance(s, dict)
    }

    def season_of(record: dict) -> int | None:
        meeting = record.get("meeting_key")
        return years.get(
            meeting if meeting is not None else meeting_of.get(record.get("session_key"))
        )

    return season_of


def read_snapshot(endpoint: str, season: int, snapshot_dir: Path = SNAPSHOT_DIR) -> FetchResult:
    """The bundled snapshot's records of one season (the file holds every season).

    Meetings and sessions carry their ``year``; the race-weekend endpoints are assigned to
    seasons through the snapshot's own meetings (:func:`snapshot_seasons`).
    """
    path = Path(snapshot_dir) / endpoints.get(endpoint).snapshot_file
    records = _read_json(path)
    if endpoints.get(endpoint).fetch is Fetch.SEASON:
        season_records = [r for r in records if isinstance(r, dict) and r.get("year") == season]
    else:
        season_of = snapshot_seasons(snapshot_dir)
        season_records = [r for r in records if isinstance(r, dict) and season_of(r) == season]
    return FetchResult(
        endpoint, season, f"snapshot:{path.name}?year={season}", 200, season_records, 0
    )


# Every race data endpoint's file, twice over (another snapshot directory, a file changed): a sync
# asks each endpoint in turn for each session, so a cache smaller than the registry was emptied
# before its next session and read every file again (all of them hold 16 MB as records).
_FILES_CACHED = 2 * len(endpoints.RACE_DATA)


@lru_cache(maxsize=_FILES_CACHED)
def _by_session(path: Path, mtime_ns: int) -> dict[object, list]:
    """A race-data file's records by session_key, read once per process (the laps file is a few
    MB; a sync reads one session at a time, every endpoint in turn)."""
    found: dict[object, list] = {}
    if not path.exists():  # an endpoint the snapshot has nothing for
        return found
    for record in _read_json(path):
        key = record.get("session_key") if isinstance(record, dict) else None
        found.setdefault(key, []).append(record)
    return found


def read_session_snapshot(
    endpoint: str, season: int, session_key: int, snapshot_dir: Path = SNAPSHOT_DIR
) -> FetchResult:
    """The bundled snapshot's records of one session of a race-data endpoint (an empty answer
    when the snapshot has none: a session nobody recorded)."""
    path = Path(snapshot_dir) / endpoints.get(endpoint).snapshot_file
    mtime = path.stat().st_mtime_ns if path.exists() else 0
    records = [dict(r) for r in _by_session(path, mtime).get(session_key, [])]
    url = f"snapshot:{path.name}?session_key={session_key}"
    return FetchResult(endpoint, season, url, 200, records, 0, session_key)
