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

import math
import re
from dataclasses import dataclass
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
    create_model,
    field_validator,
)

# A date, then a time: what OpenF1 sends (2024-03-02T15:00:00+00:00) and what pandas wrote in
# some recorded sessions (2024-09-22 11:07:46.576000+00:00).
_DATE_AND_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _must_be_text(value: object) -> object:
    """OpenF1 sends ISO 8601 strings with a date and a time; a number, or text that is not one
    ("1709391600", a date alone), is a wrong type, not a Unix time or a midnight to guess."""
    if value is None:
        return value
    if not isinstance(value, str):
        raise ValueError(f"a timestamp must be an ISO 8601 string, not {type(value).__name__}")
    if not _DATE_AND_TIME.match(value.strip()):
        raise ValueError(
            "a timestamp must be an ISO 8601 date and time such as 2024-03-02T15:00:00+00:00,"
            f" not {value!r:.40}"
        )
    return value


def _as_utc(value: datetime) -> datetime:
    """Older captures have naive times: UTC, not a reason to reject (OpenF1 commit 574984a made
    its documented examples +00:00; https://github.com/br-g/openf1)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


UtcDatetime = Annotated[datetime, BeforeValidator(_must_be_text), AfterValidator(_as_utc)]


# What a raw table's integer column holds (PostgreSQL's integer, 4 bytes).
INTEGER_RANGE = (-(2**31), 2**31 - 1)


class _Record(BaseModel):
    # Integers are strict: "12" or true where OpenF1 documents an int is a reject, not a guess.
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _fits_an_integer_column(cls, value):
        """An integer beyond PostgreSQL's integer is a reject, not a failed fetch."""
        low, high = INTEGER_RANGE
        if isinstance(value, int) and not isinstance(value, bool) and not low <= value <= high:
            raise ValueError(f"{value} is out of range for an integer column")
        return value


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


# -- race data: one request per endpoint per session (racemap sync) ------------------------------
# Quirks of the recorded sessions (data/README.md), handled here rather than cleaned by hand: a
# recording may start after lap 1, a first lap may have no date_start, a stint may have no
# lap_start / lap_end, i1_speed / st_speed are often null, intervals send "" for a gap at the
# first timestamp, weather dates written by pandas ("2024-09-22 11:07:46.576000+00:00") parse as
# ISO 8601, and a whole number that went through a float ("1.0" in a CSV, 1.0 in JSON) is that
# number.


def _whole(value: object) -> object:
    """An integer, or a float holding one (1.0, as pandas writes an int column with nulls);
    true/false, 1.5 and "1" are rejects."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ValueError(f"must be a whole number, not {value!r:.40}")


def _segments(value: object) -> object:
    """A list of segment codes (whole numbers) holding nulls, or null."""
    if value is None or (isinstance(value, list) and all(_whole_ok(v) for v in value)):
        return value
    raise ValueError(f"must be a list of whole numbers or nulls, not {value!r:.60}")


def _whole_ok(value: object) -> bool:
    try:
        _whole(value)
    except ValueError:
        return False
    return True


WholeInt = Annotated[int, BeforeValidator(_whole)]
Segments = Annotated[Any, BeforeValidator(_segments)]


class Driver(_Record):
    session_key: WholeInt
    driver_number: WholeInt
    meeting_key: WholeInt | None = None
    broadcast_name: str | None = None
    full_name: str | None = None
    name_acronym: str | None = None
    team_name: str | None = None
    team_colour: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    headshot_url: str | None = None
    country_code: str | None = None


class Lap(_Record):
    session_key: WholeInt
    driver_number: WholeInt
    lap_number: WholeInt
    meeting_key: WholeInt | None = None
    date_start: UtcDatetime | None = None  # null on some first laps
    lap_duration: Number = None
    duration_sector_1: Number = None
    duration_sector_2: Number = None
    duration_sector_3: Number = None
    i1_speed: Number = None
    i2_speed: Number = None
    st_speed: Number = None
    is_pit_out_lap: StrictBool | None = None
    segments_sector_1: Segments = None
    segments_sector_2: Segments = None
    segments_sector_3: Segments = None


class Stint(_Record):
    session_key: WholeInt
    driver_number: WholeInt
    stint_number: WholeInt
    meeting_key: WholeInt | None = None
    compound: str | None = None
    lap_start: WholeInt | None = None
    lap_end: WholeInt | None = None
    tyre_age_at_start: WholeInt | None = None


class PitStop(_Record):
    session_key: WholeInt
    driver_number: WholeInt
    date: UtcDatetime
    meeting_key: WholeInt | None = None
    lap_number: WholeInt | None = None
    pit_duration: Number = None
    stop_duration: Number = None
    lane_duration: Number = None


class Position(_Record):
    session_key: WholeInt
    driver_number: WholeInt
    date: UtcDatetime
    meeting_key: WholeInt | None = None
    position: WholeInt | None = None


class Weather(_Record):
    session_key: WholeInt
    date: UtcDatetime
    meeting_key: WholeInt | None = None
    air_temperature: Number = None
    track_temperature: Number = None
    humidity: Number = None
    pressure: Number = None
    rainfall: Number = None
    wind_speed: Number = None
    wind_direction: WholeInt | None = None


class RaceControl(_Record):
    session_key: WholeInt
    date: UtcDatetime
    category: str
    message: str
    meeting_key: WholeInt | None = None
    flag: str | None = None
    scope: str | None = None
    sector: WholeInt | None = None
    driver_number: WholeInt | None = None
    lap_number: WholeInt | None = None
    qualifying_phase: WholeInt | None = None


class Interval(_Record):
    session_key: WholeInt
    driver_number: WholeInt
    date: UtcDatetime
    meeting_key: WholeInt | None = None
    gap_to_leader: Gap = None  # a number, "+1 LAP", or "" at the first timestamp, as sent
    interval: Gap = None


class Overtake(_Record):
    session_key: WholeInt
    overtaking_driver_number: WholeInt
    overtaken_driver_number: WholeInt
    date: UtcDatetime
    meeting_key: WholeInt | None = None
    position: WholeInt | None = None


class CarData(_Record):
    session_key: WholeInt
    driver_number: WholeInt
    date: UtcDatetime
    meeting_key: WholeInt | None = None
    brake: WholeInt | None = None
    drs: WholeInt | None = None
    n_gear: WholeInt | None = None
    rpm: WholeInt | None = None
    speed: WholeInt | None = None
    throttle: WholeInt | None = None


class Location(_Record):
    session_key: WholeInt
    driver_number: WholeInt
    date: UtcDatetime
    meeting_key: WholeInt | None = None
    x: WholeInt | None = None
    y: WholeInt | None = None
    z: WholeInt | None = None


# -- what PostgreSQL cannot store --------------------------------------------------------------
# Python's json reads NaN, Infinity and -Infinity, and "\u0000" as a NUL character: PostgreSQL
# stores none of them (not in numeric or double precision, not in jsonb, not in text), so a
# record holding one, in any field, documented or kept only in ``record``, is a reject. Its
# payload is quarantined with each of them as text ("NaN", "\\u0000").


def _number_text(value: float) -> str:
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _text_problem(value: str) -> str | None:
    if "\x00" in value:
        return "a NUL character (\\u0000)"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "a lone surrogate (not Unicode text)"
    return None


def _storable_text(value: str) -> str:
    return value.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode("utf-8")


def unstorable(value: object, where: str = "") -> list[str]:
    """Why PostgreSQL cannot store ``value`` (a record as OpenF1 sent it), one reason a place,
    each naming its field (``gap_to_leader.1``); empty when it can."""
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{where or 'record'}: must be a finite number, not {_number_text(value)}"]
    if isinstance(value, str):
        problem = _text_problem(value)
        return [f"{where or 'record'}: must not contain {problem}"] if problem else []
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            name = str(key)
            if problem := _text_problem(name):
                found.append(f"{where or 'record'}: a field name must not contain {problem}")
                name = _storable_text(name)
            found += unstorable(item, f"{where}.{name}" if where else name)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += unstorable(item, f"{where}.{i}" if where else str(i))
    return found


def storable(value: object) -> object:
    """``value`` as PostgreSQL's jsonb can hold it: NaN and the infinities as their text, a NUL
    as the text \\u0000 (a lone surrogate as its escape); ``value`` itself when it holds none."""
    if not unstorable(value):
        return value
    if isinstance(value, float):
        return _number_text(value)
    if isinstance(value, str):
        return _storable_text(value)
    if isinstance(value, dict):
        return {_storable_text(str(k)): storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v) for v in value]
    return value


def _reason(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "record"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


@dataclass
class Validated:
    """An answer's records split: ``good`` (raw, parsed) pairs, one per key, and ``rejects``
    (payload, reason); ``identical`` and ``conflicting`` count the records whose key a later
    record of the answer repeats, with the same values (loaded once) or with others (each a
    reject: the later record is loaded)."""

    good: list[tuple[dict, _Record]]
    rejects: list[tuple[object, str]]
    identical: int = 0
    conflicting: int = 0


def _key_text(keys: tuple[str, ...], key: tuple) -> str:
    return ", ".join(
        f"{name} {value.isoformat() if isinstance(value, datetime) else value}"
        for name, value in zip(keys, key, strict=True)
    )


def validate_answer(model: type[_Record], keys: tuple[str, ...], records: list) -> Validated:
    """Split records into (raw, parsed) pairs and (payload, reason) rejects.

    Records with the same key collapse to one row, the last one OpenF1 sent, and are counted: a
    record repeated with the same values is loaded once; one whose key a later record with other
    values repeats is a reject, so that nothing is left out without a word.
    """
    good: dict[tuple, tuple[dict, _Record]] = {}
    rejects: list[tuple[object, str]] = []
    identical = conflicting = 0
    for raw in records:
        if not isinstance(raw, dict):
            rejects.append((storable(raw), f"record is a JSON {type(raw).__name__}, not an object"))
            continue
        if problems := unstorable(raw):
            rejects.append((storable(raw), "; ".join(problems)))
            continue
        try:
            parsed = model.model_validate(raw)
        except ValidationError as exc:
            rejects.append((raw, _reason(exc)))
            continue
        key = tuple(getattr(parsed, k) for k in keys)
        if key in good:
            earlier = good[key][0]
            if earlier == raw:  # as sent: a field only ``record`` keeps counts too
                identical += 1
            else:
                conflicting += 1
                rejects.append(
                    (
                        earlier,
                        f"repeated key ({_key_text(keys, key)}): a later record of the answer"
                        " with the same key and other values was loaded",
                    )
                )
        good[key] = (raw, parsed)
    return Validated(list(good.values()), rejects, identical, conflicting)


def validate(
    model: type[_Record], keys: tuple[str, ...], records: list
) -> tuple[list[tuple[dict, _Record]], list[tuple[object, str]]]:
    """(good, rejects) of :func:`validate_answer`."""
    validated = validate_answer(model, keys, records)
    return validated.good, validated.rejects


def as_row(model: type[_Record], parsed: _Record) -> list:
    values = []
    for name in model.model_fields:
        value = getattr(parsed, name)
        values.append(value.isoformat() if isinstance(value, datetime) else value)
    return values


def sql_type(model: type[_Record], name: str) -> str:
    """The PostgreSQL type of a key column, from its field: integer, timestamptz or text."""
    annotation = model.model_fields[name].annotation
    if annotation is int:
        return "integer"
    if annotation is datetime:
        return "timestamptz"
    if annotation is str:
        return "text"
    raise TypeError(f"{model.__name__}.{name}: a key must be an int, a datetime or a str")


def _listed_int(value: object) -> object:
    """A key as OpenF1 listed it, read to find which stored rows it still lists: an integer, a
    float holding one, or a whole number in text ("1229"), which as a field is a reject."""
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    return _whole(value)


def _listed_text(value: str) -> str:
    if problem := _text_problem(value):
        raise ValueError(f"must not contain {problem}")
    return value


_LISTED = {
    int: Annotated[int, BeforeValidator(_listed_int)],
    datetime: UtcDatetime,
    str: Annotated[str, AfterValidator(_listed_text)],
}


def key_model(model: type[_Record], keys: tuple[str, ...]) -> type[_Record]:
    """A model of the key fields alone: the keys of every record of an answer, rejects too (a
    record OpenF1 still lists is not marked removed). Readier than ``model``: a whole number in
    text is that number; a key it cannot read (missing, "Bahrain", 1229.5) fails it."""
    fields = {k: (_LISTED[model.model_fields[k].annotation], ...) for k in keys}
    return create_model(f"{model.__name__}Key", __base__=_Record, **fields)
