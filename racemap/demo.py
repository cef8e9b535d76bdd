"""The bundled demo application tables: every Ergast race since 1950, and its circuits.

Only the embedded database gets them, and only when ``public.races`` does not exist yet: racemap
never creates or fills an application table on a database the user pointed it at.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from .paths import DATA_DIR

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


def _copy(cur, table: str, columns: list[str], rows: list[tuple]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow(["\\N" if v is None else v for v in row])
    buffer.seek(0)
    cur.copy_expert(
        f"copy {table} ({', '.join(columns)}) from stdin with (format csv, null '\\N')", buffer
    )


def create_demo_tables(conn, ergast_dir: Path = ERGAST_DIR) -> int:
    """Create and fill ``public.circuits`` and ``public.races``; returns the number of races."""
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
    return len(races)
