"""``racemap export``: the crosswalk between the application's races and OpenF1, one row per
race, as CSV, JSON or Parquet.

Every race of the races table is a row, mapped or not: its id, season, round (when the races
table has one: var ``race_round_column``), circuit and name; the OpenF1 meeting key and the
session key of every kind of session of its weekend (racemap.race_openf1_sessions); how it was
mapped (``method``, ``delta_hours``), whether its results agree (``results_check``) and, when
unmapped, why (``reason``). The columns are described in the README ("The crosswalk").
The file is written next to its destination and moved into place when complete.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from psycopg2 import sql

from racemap.db import query_dicts
from racemap.errors import RacemapError
from racemap.mapping.lookup import SESSION_KINDS
from racemap.settings import RacesTable, known_vars

FORMATS = ("csv", "json", "parquet")


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # text, int, float


COLUMNS = [
    Column("race_id", "text"),
    Column("season", "int"),
    Column("round", "int"),
    Column("circuit_id", "text"),
    Column("race_name", "text"),
    Column("status", "text"),
    Column("meeting_key", "int"),
    Column("session_key", "int"),
    *[Column(f"{kind}_session_key", "int") for kind in SESSION_KINDS if kind != "race"],
    Column("method", "text"),
    Column("delta_hours", "float"),
    Column("results_check", "text"),
    Column("reason", "text"),
]


def _round_column(conn, races: RacesTable, variables: dict) -> sql.Composable:
    """The races table's round column, or null when it has none (an explicit var must exist)."""
    column = {**known_vars(), **variables}.get("race_round_column")
    if not column:
        return sql.SQL("null")
    with conn.cursor() as cur:
        cur.execute(
            "select 1 from information_schema.columns"
            " where table_schema = %s and table_name = %s and column_name = %s",
            (races.schema, races.table, column),
        )
        found = cur.fetchone() is not None
    if found:
        return sql.SQL("cast(r.{} as integer)").format(sql.Identifier(column))
    if "race_round_column" in variables:
        raise RacemapError(
            f"column {column!r} (race_round_column) does not exist in {races.name}: "
            "set --var race_round_column=<column>, or empty for none"
        )
    return sql.SQL("null")


def crosswalk_rows(conn, variables: dict | None = None) -> list[dict]:
    """One dict per race, keys in the order of :data:`COLUMNS`, ordered by season and start."""
    variables = variables or {}
    races = RacesTable.from_vars(variables)
    with conn.cursor() as cur:
        cur.execute("select to_regclass('racemap.race_openf1_sessions') is not null")
        if not cur.fetchone()[0]:
            raise RacemapError(
                "racemap.race_openf1_sessions does not exist: run `racemap run` first"
            )
    from racemap.runtime import require_races_table

    require_races_table(conn, races)  # gone, or in a schema this role may not use: one line
    kinds = sql.SQL(", ").join(
        sql.SQL(
            "max(s.session_key) filter (where s.session_kind = {kind} and not s.is_cancelled)"
            " as {name}"
        ).format(kind=sql.Literal(kind), name=sql.Identifier(f"{kind}_session_key"))
        for kind in SESSION_KINDS
        if kind != "race"
    )
    query = sql.SQL(
        """
        with sessions as (
            select s.race_id, {kinds}
            from racemap.race_openf1_sessions as s
            group by s.race_id
        )
        select m.race_id, m.season, {round} as round, m.circuit_id, m.race_name, m.status,
            m.meeting_key, m.session_key, {kind_columns}, m.method, m.delta_hours,
            m.results_check, m.reason
        from racemap.race_openf1_mapping as m
        left join {races} as r on cast(r.{race_id} as text) = m.race_id
        left join sessions on sessions.race_id = m.race_id
        order by m.season, m.race_start_at, m.race_id
        """
    ).format(
        kinds=kinds,
        round=_round_column(conn, races, variables),
        kind_columns=sql.SQL(", ").join(
            sql.SQL("sessions.{}").format(sql.Identifier(f"{kind}_session_key"))
            for kind in SESSION_KINDS
            if kind != "race"
        ),
        races=races.relation,
        race_id=races.id,
    )
    rows = query_dicts(conn, query.as_string(conn))
    for row in rows:
        if isinstance(row["delta_hours"], Decimal):
            row["delta_hours"] = float(row["delta_hours"])
    return rows


def _write_csv(rows: list[dict], handle) -> None:
    # RFC 4180's CRLF line ends (csv's default, as unmapped_races.csv): csv quotes a field that
    # holds a character of the line end, so a name with a bare CR stays in its row.
    writer = csv.DictWriter(handle, fieldnames=[c.name for c in COLUMNS])
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})


def _write_json(rows: list[dict], handle) -> None:
    json.dump(rows, handle, ensure_ascii=False, indent=2)
    handle.write("\n")


def _parquet_table(rows: list[dict]):
    import pyarrow as pa

    types = {"text": pa.string(), "int": pa.int64(), "float": pa.float64()}
    schema = pa.schema([pa.field(c.name, types[c.kind]) for c in COLUMNS])
    return pa.Table.from_pylist(rows, schema=schema)


def write_crosswalk(rows: list[dict], fmt: str, output: Path) -> Path:
    """Write ``rows`` as ``fmt`` to ``output``: all of it, or nothing (one clear error)."""
    if fmt not in FORMATS:
        raise RacemapError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
    if str(output) == "-":
        _write_stdout(rows, fmt)
        return output
    output = Path(output)
    if not output.parent.is_dir():  # a typo in the path is no folder to create
        raise RacemapError(
            f"cannot write {output}: No such file or directory ({output.parent} does not exist: "
            "create it first)"
        )
    tmp_name = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{output.name}.", dir=output.parent)
        if fmt == "parquet":
            import pyarrow.parquet as pq

            os.close(fd)
            pq.write_table(_parquet_table(rows), tmp_name)
        else:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                (_write_csv if fmt == "csv" else _write_json)(rows, handle)
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, output)
    except OSError as exc:
        if tmp_name and os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise RacemapError(f"cannot write {output}: {exc.strerror or exc}") from None
    return output


def _write_stdout(rows: list[dict], fmt: str) -> None:
    """``--output -``: the crosswalk on standard output (Parquet as bytes)."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        sink = io.BytesIO()
        pq.write_table(_parquet_table(rows), sink)
        sys.stdout.buffer.write(sink.getvalue())
        sys.stdout.buffer.flush()
    else:
        (_write_csv if fmt == "csv" else _write_json)(rows, sys.stdout)
        sys.stdout.flush()


def export_crosswalk(conn, fmt: str, output: Path, variables: dict | None = None) -> int:
    """The crosswalk of every race into ``output``; returns the number of rows."""
    rows = crosswalk_rows(conn, variables)
    write_crosswalk(rows, fmt, output)
    return len(rows)
