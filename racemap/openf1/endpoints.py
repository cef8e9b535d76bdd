"""The one registry of OpenF1 endpoints: what racemap asks for, validates, stores and bundles.

Each endpoint is one :class:`Endpoint`, read by the records' validation, the loader, the client,
the settling rules, the snapshot, the local OpenF1 server (racemap/testing/openf1_server.py) and
scripts/build_snapshot.py. Adding an endpoint takes:

- its record model (racemap/openf1/records.py: its fields and their types) and its entry here;
- the migration creating its raw table (racemap/migrations/versions/; tests/test_migrations.py
  checks the table against the entry, and names the newest revision);
- its source table in models/staging/openf1/_openf1__sources.yml and its staging model with its
  yml: a race data endpoint's in models/staging/openf1/race_data/, whose tag ``race_data`` is
  what ``racemap sync`` builds (tests/test_endpoint_registry.py checks both).

README.md ("Contributing": adding an OpenF1 endpoint) walks through it.

How an endpoint is fetched (:class:`Fetch`):

- ``SEASON``: one ``?year=`` request per season (meetings, sessions);
- ``SEASON_MEETINGS``: one request per season over its meeting-key range
  (``?meeting_key>=first&meeting_key<=last``; session_result, starting_grid have no ``year``);
- ``SESSION``: one ``?session_key=`` request per session (the race data of ``racemap sync``),
  never per driver or per lap.

When it need not be fetched again (:class:`Settle`, racemap/openf1/settling.py):

- ``SCHEDULE``: the season is over and was loaded after it ended;
- ``SEASON_RESULTS``: the correction window (``OPENF1_SETTLE_DAYS``) after the season's last
  session has passed and a fetch came after it;
- ``SESSION``: the same window after the session's own end.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from functools import cached_property

from psycopg2 import sql

from racemap.openf1 import records


class Fetch(enum.Enum):
    SEASON = "season"  # ?year=
    SEASON_MEETINGS = "season_meetings"  # ?meeting_key>=&meeting_key<=
    SESSION = "session"  # ?session_key=


class Settle(enum.Enum):
    SCHEDULE = "schedule"
    SEASON_RESULTS = "season_results"
    SESSION = "session"


@dataclass(frozen=True)
class Endpoint:
    """One OpenF1 endpoint, declared once.

    ``name`` is its path under /v1 and its name everywhere (audit rows, rejects, ``--endpoints``);
    ``model`` validates its records (racemap/openf1/records.py); ``keys`` are its raw table's
    primary key; ``json_columns`` are stored as jsonb, as sent; ``snapshot_file`` is its file in
    data/openf1/snapshot/; ``server_files`` the file-name stems the local server also reads as
    this endpoint (``<anything>__<stem>.json``); ``order_by`` the fields the local server sorts
    its answers by; ``on_request`` endpoints (car_data, location: large) are fetched only when
    named, session by session.
    """

    name: str
    model: type[records._Record]
    keys: tuple[str, ...]
    table: str
    fetch: Fetch
    settle: Settle
    json_columns: frozenset[str] = frozenset()
    order_by: tuple[str, ...] = ("date",)
    server_files: tuple[str, ...] = ()
    on_request: bool = False
    snapshot_file: str = field(default="")

    def __post_init__(self):
        if not self.snapshot_file:
            object.__setattr__(self, "snapshot_file", f"{self.name}.json")
        missing = [k for k in self.keys if k not in self.model.model_fields]
        if missing:
            raise ValueError(f"{self.name}: keys {missing} are not fields of its model")

    @property
    def path(self) -> str:
        return f"/{self.name}"

    @property
    def columns(self) -> list[str]:
        """Its typed columns, in the model's order (the raw table also has ``record``,
        ``source``, ``fetched_at``, ``removed_at`` and ``loaded_at``)."""
        return list(self.model.model_fields)

    @property
    def relation(self) -> sql.Identifier:
        return sql.Identifier(*self.table.split("."))

    @property
    def key_types(self) -> tuple[str, ...]:
        return tuple(records.sql_type(self.model, k) for k in self.keys)

    @cached_property
    def key_model(self) -> type[records._Record]:
        return records.key_model(self.model, self.keys)

    @property
    def race_data(self) -> bool:
        return self.fetch is Fetch.SESSION

    def validate(self, answer: list):
        """(raw, parsed) pairs and (payload, reason) rejects of an answer."""
        return records.validate(self.model, self.keys, answer)

    def validate_answer(self, answer: list) -> records.Validated:
        """:meth:`validate`, with the records whose key the answer repeats counted."""
        return records.validate_answer(self.model, self.keys, answer)

    def row(self, parsed: records._Record) -> list:
        return records.as_row(self.model, parsed)


def _race(name, model, keys, **kwargs) -> Endpoint:
    """A race-data endpoint: one request per session, settled per session."""
    return Endpoint(
        name,
        model,
        ("session_key", *keys),
        f"raw.openf1_{name}",
        Fetch.SESSION,
        Settle.SESSION,
        **kwargs,
    )


REGISTRY: tuple[Endpoint, ...] = (
    Endpoint(
        "meetings",
        records.Meeting,
        ("meeting_key",),
        "raw.openf1_meetings",
        Fetch.SEASON,
        Settle.SCHEDULE,
        order_by=("date_start", "meeting_key"),
        server_files=("meeting",),
    ),
    Endpoint(
        "sessions",
        records.Session,
        ("session_key",),
        "raw.openf1_sessions",
        Fetch.SEASON,
        Settle.SCHEDULE,
        order_by=("date_start", "meeting_key", "session_key"),
        server_files=("session",),
    ),
    Endpoint(
        "session_result",
        records.SessionResult,
        ("session_key", "driver_number"),
        "raw.openf1_session_results",
        Fetch.SEASON_MEETINGS,
        Settle.SEASON_RESULTS,
        json_columns=frozenset({"duration", "gap_to_leader"}),
        order_by=("meeting_key", "session_key"),
    ),
    Endpoint(
        "starting_grid",
        records.StartingGrid,
        ("session_key", "driver_number"),
        "raw.openf1_starting_grid",
        Fetch.SEASON_MEETINGS,
        Settle.SEASON_RESULTS,
        order_by=("meeting_key", "session_key"),
    ),
    _race("drivers", records.Driver, ("driver_number",), order_by=("driver_number",)),
    _race(
        "laps",
        records.Lap,
        ("driver_number", "lap_number"),
        json_columns=frozenset({"segments_sector_1", "segments_sector_2", "segments_sector_3"}),
        order_by=("date_start", "driver_number", "lap_number"),
    ),
    _race(
        "stints",
        records.Stint,
        ("driver_number", "stint_number"),
        order_by=("driver_number", "stint_number"),
    ),
    _race("pit", records.PitStop, ("driver_number", "date")),
    _race("position", records.Position, ("driver_number", "date")),
    _race("weather", records.Weather, ("date",)),
    _race("race_control", records.RaceControl, ("date", "category", "message")),
    _race(
        "intervals",
        records.Interval,
        ("driver_number", "date"),
        json_columns=frozenset({"gap_to_leader", "interval"}),
    ),
    _race(
        "overtakes",
        records.Overtake,
        ("overtaking_driver_number", "overtaken_driver_number", "date"),
    ),
    _race("car_data", records.CarData, ("driver_number", "date"), on_request=True),
    _race("location", records.Location, ("driver_number", "date"), on_request=True),
)
BY_NAME: dict[str, Endpoint] = {e.name: e for e in REGISTRY}

SCHEDULE = tuple(e for e in REGISTRY if e.fetch is Fetch.SEASON)  # meetings, sessions
SEASON_MEETINGS = tuple(e for e in REGISTRY if e.fetch is Fetch.SEASON_MEETINGS)
RACE_DATA = tuple(e for e in REGISTRY if e.fetch is Fetch.SESSION)
DEFAULT_RACE_DATA = tuple(e for e in RACE_DATA if not e.on_request)


def get(name: str) -> Endpoint:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown OpenF1 endpoint {name!r}") from None


def names(endpoints) -> tuple[str, ...]:
    return tuple(e.name for e in endpoints)
