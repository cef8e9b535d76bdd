"""The bundled demo application tables: every Ergast race since 1950, its circuits, and the
races' results and drivers (the application's own results: the second signal racemap checks a
mapping against).

Only the embedded database gets them, and only when ``public.races`` (``public.results``) does
not exist yet: racemap never creates or fills an application table on a database the user
pointed it at.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from racemap.paths import DATA_DIR

ERGAST_DIR = DATA_DIR / "ergast"

_DDL = """
create table public.circuits (
    id integer primary key,
    circuit_ref text not null unique,
    name text not null,
    location text,
    country text,
    lat double precision,
    lng double precision,
    alt integer,
    url text
);
create table public.races (
    id text primary key,
    year integer not null,
    round integer not null,
    circuit_id text not null references public.circuits (circuit_ref),
    name text not null,
    date date not null,
    time time,
    url text
);
"""

# Ergast's results.csv and drivers.csv as the application holds them: ids as text like races.id,
# \N as null (position is null when the car was not classified). race_id is indexed, not a
# foreign key: a race can leave the races table and come back (as in tests/test_apply.py)
# without its results going first, as with Ergast's own CSV files.
_RESULTS_DDL = """
create table public.drivers (
    id text primary key,
    driver_ref text not null unique,
    number integer,
    code text,
    forename text not null,
    surname text not null,
    dob date,
    nationality text,
    url text
);
create table public.results (
    id integer primary key,
    race_id text not null,
    driver_id text not null references public.drivers (id),
    constructor_id integer not null,
    number integer,
    grid integer,
    position integer,
    position_text text not null,
    position_order integer not null,
    points numeric,
    laps integer,
    time text,
    milliseconds bigint,
    fastest_lap integer,
    fastest_lap_rank integer,
    fastest_lap_time text,
    fastest_lap_speed numeric,
    status_id integer
);
create index results_race_id_idx on public.results (race_id);
"""
# The application's columns and the Ergast CSV field each is read from.
DRIVER_FIELDS = {
    "id": "driverId",
    "driver_ref": "driverRef",
    "number": "number",
    "code": "code",
    "forename": "forename",
    "surname": "surname",
    "dob": "dob",
    "nationality": "nationality",
    "url": "url",
}
RESULT_FIELDS = {
    "id": "resultId",
    "race_id": "raceId",
    "driver_id": "driverId",
    "constructor_id": "constructorId",
    "number": "number",
    "grid": "grid",
    "position": "position",
    "position_text": "positionText",
    "position_order": "positionOrder",
    "points": "points",
    "laps": "laps",
    "time": "time",
    "milliseconds": "milliseconds",
    "fastest_lap": "fastestLap",
    "fastest_lap_rank": "rank",
    "fastest_lap_time": "fastestLapTime",
    "fastest_lap_speed": "fastestLapSpeed",
    "status_id": "statusId",
}


def _null(value: str) -> str | None:
    return None if value in ("\\N", "") else value


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [row for row in csv.DictReader(handle) if any(row.values())]


def circuit_rows(ergast_dir: Path = ERGAST_DIR) -> list[tuple]:
    return [
        (
            int(r["circuitId"]),
            r["circuitRef"],
            r["name"],
            _null(r["location"]),
            _null(r["country"]),
            _null(r["lat"]),
            _null(r["lng"]),
            _null(r["alt"]),
            _null(r["url"]),
        )
        for r in _read_csv(ergast_dir / "circuits.csv")
    ]


def race_rows(ergast_dir: Path = ERGAST_DIR) -> list[tuple]:
    """Ergast races with circuitId turned into the circuit's circuitRef, times as UTC."""
    refs = {str(c[0]): c[1] for c in circuit_rows(ergast_dir)}
    rows = []
    for r in _read_csv(ergast_dir / "races.csv"):
        time = _null(r["time"])
        rows.append(
            (
                r["raceId"],
                int(r["year"]),
                int(r["round"]),
                refs[r["circuitId"]],
                r["name"],
                r["date"],
                time.rstrip("Z") if time else None,
                _null(r["url"]),
            )
        )
    return rows


def driver_rows(ergast_dir: Path = ERGAST_DIR) -> list[tuple]:
    """Ergast drivers; the practice-only drivers' empty fields become null."""
    return [
        tuple(_null(r[f]) for f in DRIVER_FIELDS.values())
        for r in _read_csv(ergast_dir / "drivers.csv")
    ]


def result_rows(ergast_dir: Path = ERGAST_DIR) -> list[tuple]:
    """Ergast results, one per car per race; ``\\N`` (not classified, no time, ...) is null."""
    return [
        tuple(_null(r[f]) for f in RESULT_FIELDS.values())
        for r in _read_csv(ergast_dir / "results.csv")
    ]


def _copy(cur, table: str, columns: list[str], rows: list[tuple]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow(["\\N" if v is None else v for v in row])
    buffer.seek(0)
    cur.copy_expert(
        f"copy {table} ({', '.join(columns)}) from stdin with (format csv, null '\\N')", buffer
    )


def create_demo_results(conn, ergast_dir: Path = ERGAST_DIR) -> int:
    """Create and fill ``public.drivers`` and ``public.results`` beside the demo races; returns
    the number of results."""
    results = result_rows(ergast_dir)
    with conn.cursor() as cur:
        cur.execute(_RESULTS_DDL)
        _copy(cur, "public.drivers", list(DRIVER_FIELDS), driver_rows(ergast_dir))
        _copy(cur, "public.results", list(RESULT_FIELDS), results)
    return len(results)


def create_demo_tables(conn, ergast_dir: Path = ERGAST_DIR) -> int:
    """Create and fill ``public.circuits``, ``public.races``, ``public.drivers`` and
    ``public.results``; returns the number of races."""
    races = race_rows(ergast_dir)
    with conn.cursor() as cur:
        cur.execute(_DDL)
        _copy(
            cur,
            "public.circuits",
            ["id", "circuit_ref", "name", "location", "country", "lat", "lng", "alt", "url"],
            circuit_rows(ergast_dir),
        )
        _copy(
            cur,
            "public.races",
            ["id", "year", "round", "circuit_id", "name", "date", "time", "url"],
            races,
        )
    create_demo_results(conn, ergast_dir)
    return len(races)
