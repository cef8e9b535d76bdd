"""Validation of OpenF1 records on their way into the raw tables.

Both record shapes load: the legacy one (before January 2026, no ``date_end`` on meetings and no
``is_cancelled``) and the current one. Fields that are not documented are kept in the ``jsonb``
record, not rejected. A missing key or a wrong type makes a reject with its reason.

``session_result`` and ``starting_grid`` (https://openf1.org/#session-result,
https://openf1.org/#starting-grid) are keyed by (session_key, driver_number). Their quirks, as
recorded in data/openf1/snapshot/ (data/README.md): qualifying ``duration`` / ``gap_to_leader``
are 3-element arrays (Q1, Q2, Q3) holding nulls; ``gap_to_leader`` may be a number, ``0``, a
string such as ``"+1 LAP"``, or null; ``points`` is missing outside Race and Sprint sessions;
``position`` is null when not classified. ``duration`` and ``gap_to_leader`` are kept as sent
(jsonb).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StrictBool,
    StrictInt,
    ValidationError,
)


def _must_be_text(value: object) -> object:
    """OpenF1 sends ISO 8601 strings; a number here is a wrong type, not a Unix time to guess."""
    if value is not None and not isinstance(value, str):
        raise ValueError(f"a timestamp must be an ISO 8601 string, not {type(value).__name__}")
    return value


def _as_utc(value: datetime) -> datetime:
    """Older captures have naive times: UTC, not a reason to reject (OpenF1 commit 574984a made
    its documented examples +00:00; https://github.com/br-g/openf1)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


UtcDatetime = Annotated[datetime, BeforeValidator(_must_be_text), AfterValidator(_as_utc)]


class _Record(BaseModel):
    # Integers are strict: "12" or true where OpenF1 documents an int is a reject, not a guess.
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class Meeting(_Record):
    meeting_key: StrictInt
    meeting_name: str | None = None
    meeting_official_name: str | None = None
    meeting_code: str | None = None
    location: str | None = None
    country_key: StrictInt | None = None
    country_code: str | None = None
    country_name: str | None = None
    country_flag: str | None = None
    circuit_key: StrictInt | None = None
    circuit_short_name: str | None = None
    circuit_type: str | None = None
    circuit_info_url: str | None = None
    circuit_image: str | None = None
    gmt_offset: str | None = None
    date_start: UtcDatetime | None = None
    date_end: UtcDatetime | None = None
    is_cancelled: StrictBool | None = None
    year: StrictInt


class Session(_Record):
    session_key: StrictInt
    meeting_key: StrictInt
    session_name: str | None = None
    session_type: str | None = None
    location: str | None = None
    country_key: StrictInt | None = None
    country_code: str | None = None
    country_name: str | None = None
    circuit_key: StrictInt | None = None
    circuit_short_name: str | None = None
    gmt_offset: str | None = None
    date_start: UtcDatetime | None = None
    date_end: UtcDatetime | None = None
    is_cancelled: StrictBool | None = None
    year: StrictInt


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _must_be_number(value: object) -> object:
    """A JSON number or null: true/false or "1.5" is a reject, not a guess."""
    if value is not None and not _is_number(value):
        raise ValueError(f"must be a number, not {type(value).__name__}")
    return value


def _json_shape(allow_text: bool):
    """A number or null, or a list of them (qualifying: Q1, Q2, Q3); text too when allowed."""

    def scalar(value: object) -> bool:
        return value is None or _is_number(value) or (allow_text and isinstance(value, str))

    def check(value: object) -> object:
        if scalar(value) or (isinstance(value, list) and all(scalar(v) for v in value)):
            return value
        kinds = "a number, a string" if allow_text else "a number"
        raise ValueError(f"must be {kinds}, null, or a list of them, not {value!r:.60}")

    return BeforeValidator(check)


Number = Annotated[Any, BeforeValidator(_must_be_number)]
Duration = Annotated[Any, _json_shape(allow_text=False)]  # seconds; qualifying [Q1, Q2, Q3]
Gap = Annotated[Any, _json_shape(allow_text=True)]  # also "+1 LAP", "+2 LAPS"


class SessionResult(_Record):
    session_key: StrictInt
    driver_number: StrictInt
    meeting_key: StrictInt | None = None
    position: StrictInt | None = None
    number_of_laps: StrictInt | None = None
    points: Number = None  # missing outside Race and Sprint
    dnf: StrictBool | None = None
    dns: StrictBool | None = None
    dsq: StrictBool | None = None
    duration: Duration = None
    gap_to_leader: Gap = None


class StartingGrid(_Record):
    """Its ``session_key`` is the qualifying session, not the race
    (https://github.com/br-g/openf1/issues/356)."""

    session_key: StrictInt
    driver_number: StrictInt
    meeting_key: StrictInt | None = None
    position: StrictInt | None = None
    lap_duration: Number = None


MODELS: dict[str, type[_Record]] = {
    "meetings": Meeting,
    "sessions": Session,
    "session_result": SessionResult,
    "starting_grid": StartingGrid,
}
KEYS: dict[str, tuple[str, ...]] = {
    "meetings": ("meeting_key",),
    "sessions": ("session_key",),
    "session_result": ("session_key", "driver_number"),
    "starting_grid": ("session_key", "driver_number"),
}
TABLES = {
    "meetings": "raw.openf1_meetings",
    "sessions": "raw.openf1_sessions",
    "session_result": "raw.openf1_session_results",
    "starting_grid": "raw.openf1_starting_grid",
}
JSON_COLUMNS = {"duration", "gap_to_leader"}  # stored as jsonb, as sent


def columns(endpoint: str) -> list[str]:
    return list(MODELS[endpoint].model_fields)


def _reason(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "record"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def validate(
    endpoint: str, records: list
) -> tuple[list[tuple[dict, _Record]], list[tuple[object, str]]]:
    """Split records into (raw, parsed) pairs and (payload, reason) rejects.

    Duplicate keys collapse to one row: the last one OpenF1 sent wins.
    """
    model = MODELS[endpoint]
    good: dict[int, tuple[dict, _Record]] = {}
    rejects: list[tuple[object, str]] = []
    for raw in records:
        if not isinstance(raw, dict):
            rejects.append((raw, f"record is a JSON {type(raw).__name__}, not an object"))
            continue
        try:
            parsed = model.model_validate(raw)
        except ValidationError as exc:
            rejects.append((raw, _reason(exc)))
            continue
        good[tuple(getattr(parsed, k) for k in KEYS[endpoint])] = (raw, parsed)
    return list(good.values()), rejects


def as_row(endpoint: str, parsed: _Record) -> list:
    values = []
    for name in columns(endpoint):
        value = getattr(parsed, name)
        values.append(value.isoformat() if isinstance(value, datetime) else value)
    return values
