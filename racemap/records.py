"""Validation of OpenF1 records on their way into the raw tables.

Both record shapes load: the legacy one (before January 2026, no ``date_end`` on meetings and no
``is_cancelled``) and the current one. Fields that are not documented are kept in the ``jsonb``
record, not rejected. A missing key or a wrong type makes a reject with its reason.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

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
    """Older captures have naive times (OPENF1_NOTES §5): they are UTC, not a reason to reject."""
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


MODELS: dict[str, type[_Record]] = {"meetings": Meeting, "sessions": Session}
KEYS = {"meetings": "meeting_key", "sessions": "session_key"}


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
        good[getattr(parsed, KEYS[endpoint])] = (raw, parsed)
    return list(good.values()), rejects


def as_row(endpoint: str, parsed: _Record) -> list:
    values = []
    for name in columns(endpoint):
        value = getattr(parsed, name)
        values.append(value.isoformat() if isinstance(value, datetime) else value)
    return values
