"""Scales: synthetic data ×1, ×10, ×100, ×1000 of the real 2023-2025 volume.

The real OpenF1 snapshot and the 2022-2026 races are copied into "universes", each with its own
circuit keys, circuit ids, meeting, session and race ids (universe 0 is the real data), so every
universe keeps the real shape (sprint weekends, testing, a cancelled meeting, races outside
OpenF1's coverage, races OpenF1 has nothing for). Generated in SQL (generate_series). At each
scale: ``dbt build`` of the models (seeds excluded: the synthetic circuit map is loaded into the
seed's table; the project's seeds are not touched; unit tests excluded, as a run builds) and the
apply, timed; the growth ratio between consecutive scales; EXPLAIN ANALYZE of every model that
joins, at every scale, read for nested loops that scan their inner side again for each outer row.

The checks (``failures``; ``racemap bench`` exits 1 on any, one line each, naming the scale and
the node): a scale that does not finish; a node (model, data test, snapshot) or the apply whose
time grows more than GROWTH_LIMIT times as fast as the data between two scales, its fixed cost
aside; a nested loop that rescans. The last one does not depend on the clock: tests/test_bench.py
runs it at x10.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from contextlib import contextmanager, suppress

from psycopg2 import sql

from racemap.db import Database
from racemap.mapping import dbt
from racemap.settings import RacesTable

from .request_counts import DEFAULT_SEASONS
from .scratch import Scratch, execute, prepare_demo_database, rows, using

DEFAULT_SCALES = (1, 10, 100, 1000)
# A scale whose dbt build runs longer than this is cancelled and reported as not finished.
DEFAULT_MAX_BUILD_SECONDS = 120.0
# Per universe: the real races of these seasons (2022: before coverage, 2026: not in the snapshot).
UNIVERSE_SEASONS = (2022, 2026)
# Growth: ten times the data may cost about twelve times the time in a node (the data ratio times
# GROWTH_LIMIT), not more: linear with room for a shared machine's noise. A node's time at the
# smaller scale counts as at least GROWTH_FLOOR_SECONDS, its fixed cost (a connection, the DDL,
# planning), so that a node of a few milliseconds is not judged on its noise.
GROWTH_LIMIT = 1.2
GROWTH_FLOOR_SECONDS = 0.25
# A nested loop whose inner side is read again for every outer row is quadratic: flagged when the
# inner side reads at least RESCAN_ROWS_PER_LOOP rows a loop and RESCAN_ROWS in all (x1, 103
# races, never comes near; an index lookup reads a row or two a loop).
RESCAN_ROWS_PER_LOOP = 100
RESCAN_ROWS = 100_000
# Offsets per universe: far above the real keys (meeting_key <= ~1300, session_key <= ~10100,
# circuit_key <= ~160), and x1000 stays well inside integer.
MEETING_OFFSET, SESSION_OFFSET, CIRCUIT_OFFSET = 10_000, 100_000, 1_000


# One cancelled meeting per universe (the snapshot has none): Imola 2023, called off. No race in
# the races table is near it, so it changes no mapping; it is there for the shape.
_CANCELLED_MEETING = {
    "meeting_key": 9001,
    "meeting_name": "Emilia Romagna Grand Prix",
    "meeting_official_name": "CALLED OFF - FORMULA 1 GRAN PREMIO DEL MADE IN ITALY E "
    "DELL'EMILIA-ROMAGNA 2023",
    "circuit_key": 6,
    "circuit_short_name": "Imola",
    "location": "Imola",
    "country_name": "Italy",
    "date_start": "2023-05-19T11:30:00+00:00",
    "date_end": "2023-05-21T15:00:00+00:00",
    "is_cancelled": True,
    "year": 2023,
}
_CANCELLED_SESSIONS = [
    (90001, "Practice 1", "Practice", "2023-05-19T11:30:00+00:00"),
    (90002, "Practice 2", "Practice", "2023-05-19T15:00:00+00:00"),
    (90003, "Practice 3", "Practice", "2023-05-20T10:30:00+00:00"),
    (90004, "Qualifying", "Qualifying", "2023-05-20T14:00:00+00:00"),
    (90005, "Race", "Race", "2023-05-21T13:00:00+00:00"),
]


def _columns(db: Database, schema: str, table: str) -> list[str]:
    found = rows(
        db,
        "select column_name from information_schema.columns where table_schema = %s"
        " and table_name = %s order by ordinal_position",
        (schema, table),
    )
    return [r[0] for r in found]


def _setup_universe_base(db: Database, variables: dict, log=print) -> dict:
    """Real data into bench.base_*: snapshot, 2022-2026 races, circuit map; seeds in place."""
    from racemap.openf1 import endpoints
    from racemap.openf1.loader import load_openf1

    prepare_demo_database(db, variables)
    load_openf1(db, list(DEFAULT_SEASONS), offline=True)
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute("create schema bench")
        cur.execute("create table bench.base_meetings as table raw.openf1_meetings")
        cur.execute("create table bench.base_sessions as table raw.openf1_sessions")
        m = _CANCELLED_MEETING
        cols = [c for c in endpoints.get("meetings").columns if c in m]
        cur.execute(
            sql.SQL("insert into bench.base_meetings ({}, record) values ({}, %s)").format(
                sql.SQL(", ").join(map(sql.Identifier, cols)),
                sql.SQL(", ").join(sql.Placeholder() * len(cols)),
            ),
            [m[c] for c in cols] + [json.dumps(m)],
        )
        for key, name, kind, start in _CANCELLED_SESSIONS:
            record = {
                "session_key": key,
                "meeting_key": m["meeting_key"],
                "session_name": name,
                "session_type": kind,
                "circuit_key": m["circuit_key"],
                "circuit_short_name": m["circuit_short_name"],
                "location": m["location"],
                "country_name": m["country_name"],
                "date_start": start,
                "is_cancelled": True,
                "year": 2023,
            }
            cur.execute(
                "insert into bench.base_sessions (session_key, meeting_key, session_name,"
                " session_type, circuit_key, circuit_short_name, location, country_name,"
                " date_start, date_end, is_cancelled, year, record) values"
                " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s::timestamptz + interval '1 hour',"
                " true, 2023, %s)",
                [
                    key,
                    m["meeting_key"],
                    name,
                    kind,
                    m["circuit_key"],
                    m["circuit_short_name"],
                    m["location"],
                    m["country_name"],
                    start,
                    start,
                    json.dumps(record),
                ],
            )
        # The application's races: the real 2022-2026 ones; a plain table (no circuits FK),
        # keyed as racemap's migration leaves it.
        cur.execute(
            "create table bench.base_races as select id, year, round, circuit_id, name, date,"
            " time, url from public.races where year between %s and %s",
            UNIVERSE_SEASONS,
        )
        cur.execute("drop table public.races cascade")
        cur.execute("drop table public.circuits cascade")
        cur.execute("create table public.races (like bench.base_races including all)")
        cur.execute("alter table public.races add primary key (id)")
    dbt.migrate(variables)
    dbt.require(dbt.invoke(["seed", "--full-refresh"], variables))
    execute(db, "create table bench.base_circuit_map as table racemap_seeds.circuit_map")
    counts = rows(
        db,
        "select (select count(*) from bench.base_races),"
        " (select count(*) from bench.base_races where year between 2023 and 2025),"
        " (select count(*) from bench.base_meetings),"
        " (select count(*) from bench.base_sessions),"
        " (select count(*) from bench.base_circuit_map)",
    )[0]
    return dict(
        zip(
            ("races", "races_2023_2025", "meetings", "sessions", "circuit_map_rows"),
            counts,
            strict=True,
        )
    )


def _universe_select(columns: list[str], table: str, offsets: dict[str, str]) -> sql.Composed:
    exprs = [
        sql.SQL(offsets[c]).format(col=sql.Identifier("b", c))
        if c in offsets
        else sql.Identifier("b", c)
        for c in columns
    ]
    return sql.SQL(
        "insert into {target} ({cols}) select {exprs} from bench.{base} as b"
        " cross join generate_series(0, %(copies)s - 1) as u"
    ).format(
        target=sql.SQL(table),
        cols=sql.SQL(", ").join(map(sql.Identifier, columns)),
        exprs=sql.SQL(", ").join(exprs),
        base=sql.Identifier(f"base_{table.split('.')[-1].removeprefix('openf1_')}"),
    )


# The raw tables' provenance (not null) for the synthetic cancelled meeting and its sessions,
# which the base tables hold without it; the loaded rows keep theirs.
PROVENANCE = {"source": "coalesce({col}, 'snapshot')", "fetched_at": "coalesce({col}, now())"}


def _generate_scale(db: Database, copies: int) -> dict:
    """Replace the raw tables, the races and the circuit map with ``copies`` universes."""
    suffix = "case when u = 0 then {col} else {col} || '~u' || u end"
    meetings = _universe_select(
        [c for c in _columns(db, "raw", "openf1_meetings") if c != "loaded_at"],
        "raw.openf1_meetings",
        {
            "meeting_key": "{col} + u * " + str(MEETING_OFFSET),
            "circuit_key": "{col} + u * " + str(CIRCUIT_OFFSET),
            **PROVENANCE,
        },
    )
    sessions = _universe_select(
        [c for c in _columns(db, "raw", "openf1_sessions") if c != "loaded_at"],
        "raw.openf1_sessions",
        {
            "session_key": "{col} + u * " + str(SESSION_OFFSET),
            "meeting_key": "{col} + u * " + str(MEETING_OFFSET),
            "circuit_key": "{col} + u * " + str(CIRCUIT_OFFSET),
            **PROVENANCE,
        },
    )
    races = _universe_select(
        ["id", "year", "round", "circuit_id", "name", "date", "time", "url"],
        "public.races",
        {"id": suffix, "circuit_id": suffix},
    )
    circuit_map = sql.SQL(
        "insert into racemap_seeds.circuit_map (circuit_id, circuit_key, circuit_short_name, note)"
        " select case when u = 0 then b.circuit_id else b.circuit_id || '~u' || u end,"
        " b.circuit_key + u * {offset}, b.circuit_short_name,"
        " case when u = 0 then b.note else 'bench universe ' || u end"
        " from bench.base_circuit_map as b cross join generate_series(0, %(copies)s - 1) as u"
    ).format(offset=sql.Literal(CIRCUIT_OFFSET))
    start = time.perf_counter()
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(
            "truncate raw.openf1_meetings, raw.openf1_sessions, public.races,"
            " racemap_seeds.circuit_map"
        )
        for statement in (meetings, sessions, races, circuit_map):
            cur.execute(statement, {"copies": copies})
    conn = db.connect()
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            for table in (
                "raw.openf1_meetings",
                "raw.openf1_sessions",
                "public.races",
                "racemap_seeds.circuit_map",
            ):
                cur.execute(f"vacuum analyze {table}")
    finally:
        conn.close()
    seconds = time.perf_counter() - start
    counts = rows(
        db,
        "select (select count(*) from public.races), (select count(*) from raw.openf1_meetings),"
        " (select count(*) from raw.openf1_sessions),"
        " (select count(*) from racemap_seeds.circuit_map)",
    )[0]
    return {
        "races": counts[0],
        "meetings": counts[1],
        "sessions": counts[2],
        "circuit_map_rows": counts[3],
        "generate_seconds": round(seconds, 3),
    }


@contextmanager
def _cancel_after(db: Database, seconds: float | None):
    """Cancel every query in ``db`` once ``seconds`` have passed (until the block ends)."""
    fired: list[float] = []
    if not seconds:
        yield fired
        return
    stop = threading.Event()

    def watch():
        if stop.wait(seconds):
            return
        fired.append(seconds)
        while not stop.is_set():
            # The build may be closing its connections right now: try again in a second.
            with suppress(Exception):
                rows(
                    db,
                    "select pg_cancel_backend(pid) from pg_stat_activity"
                    " where datname = %s and pid <> pg_backend_pid()",
                    (db.dbname,),
                )
            stop.wait(1.0)

    thread = threading.Thread(target=watch, name="bench-build-budget", daemon=True)
    thread.start()
    try:
        yield fired
    finally:
        stop.set()
        thread.join()


def _node_seconds(outcome) -> dict[str, float]:
    out = {}
    for item in outcome.results:
        node = getattr(item, "node", None)
        if node is None or getattr(node, "resource_type", None) is None:
            continue
        out[_node_name(node)] = round(float(getattr(item, "execution_time", 0.0) or 0.0), 3)
    return out


def _node_name(node) -> str:
    return f"{str(node.resource_type).split('.')[-1].lower()}:{node.name}"


def _failed_nodes(outcome) -> list[str]:
    """The nodes whose statement failed: the ones running when a build was cancelled."""
    return [
        _node_name(item.node)
        for item in outcome.results
        if getattr(item, "node", None) is not None
        and str(getattr(item, "status", "")).lower() in {"error", "fail", "runtime error"}
    ]


def _joined_models(outcome) -> dict[str, str]:
    """The compiled SQL of every intermediate and mart model that joins, by model name."""
    out = {}
    for item in outcome.results:
        node = getattr(item, "node", None)
        if node is None or str(getattr(node, "resource_type", "")).split(".")[-1] != "model":
            continue
        path = str(getattr(node, "original_file_path", ""))
        code = getattr(node, "compiled_code", None) or ""
        if path.startswith(("models/intermediate/", "models/marts/")) and re.search(
            r"\bjoin\b", code, re.IGNORECASE
        ):
            out[node.name] = code
    return dict(sorted(out.items()))


# The plans printed for the largest scale: the candidate range join and the matching model.
PRINTED_PLANS = ("int_races_joined_to_race_sessions", "int_races_matched_to_meetings")


def _explain(db: Database, statement: str, analyze: bool) -> list[str]:
    options = "analyze, buffers off, costs off" if analyze else "costs on"
    return [r[0] for r in rows(db, f"explain ({options}) {statement}")]


def _explained(db: Database, models_sql: dict[str, str], label: str, analyze: bool) -> dict:
    """Each model's plan with its findings, under ``"<model>, <label>"``."""
    out = {}
    for name, code in models_sql.items():
        plan = _explain(db, code, analyze=analyze)
        out[f"{name}, {label}"] = {"plan": plan, "findings": _plan_findings(plan)}
    return out


def _plan_findings(plan: list[str]) -> list[str]:
    text = "\n".join(plan)
    findings = []
    hashed = set(re.findall(r"hashed SubPlan (\d+)", text))
    correlated = {}
    for i, line in enumerate(plan):
        m = re.match(r"\s*SubPlan (\d+)$", line)
        if m and m.group(1) not in hashed and i + 1 < len(plan):
            loops = re.search(r"loops=(\d+)", plan[i + 1])
            correlated[m.group(1)] = int(loops.group(1)) if loops else None
    if correlated:
        counts = [n for n in correlated.values() if n is not None]
        findings.append(
            f"{len(correlated)} correlated SubPlan(s) run once per outer row"
            + (f" (up to {max(counts)} times): quadratic" if counts else "")
        )
    else:
        findings.append("no correlated SubPlan")
    if "Nested Loop" in text:
        findings.append("nested loops: " + str(text.count("Nested Loop")))
    else:
        findings.append("no nested loop: every join is a hash or merge join")
    for m in re.finditer(r"Rows Removed by (Join )?Filter: (\d+)", text):
        if int(m.group(2)) > 1_000_000:
            findings.append(f"a filter discards {m.group(2)} rows (a join that grows with n²?)")
    jit = re.search(r"Timing: .*Total ([0-9.]+) ms", text)
    if jit and float(jit.group(1)) > 1000:
        findings.append(f"JIT compiled for {float(jit.group(1)) / 1000:.1f} s: estimates too high?")
    return findings


READ_PER_LOOP = ("Actual Rows", "Rows Removed by Filter", "Rows Removed by Join Filter")


def rescans(plan: dict) -> list[str]:
    """The nested loops of an EXPLAIN (ANALYZE, FORMAT JSON) plan that read their inner side again
    for every outer row, each as 'Nested Loop: <inner node> read N times, M rows each'. A plan with
    none is linear in its joins; an index lookup or a memoized one-row lateral is not a rescan."""
    found: list[str] = []

    def subtree(node: dict):
        yield node
        for child in node.get("Plans", []):
            yield from subtree(child)

    def walk(node: dict) -> None:
        if node.get("Node Type") == "Nested Loop":
            inner = [c for c in node.get("Plans", []) if c.get("Parent Relationship") == "Inner"]
            rescanned = []
            for scanned in (n for c in inner for n in subtree(c)):
                loops = int(scanned.get("Actual Loops") or 0)
                # Per loop, as EXPLAIN reports them: the rows returned and the rows discarded.
                per_loop = sum(float(scanned.get(key) or 0) for key in READ_PER_LOOP)
                if (
                    loops >= RESCAN_ROWS_PER_LOOP
                    and per_loop >= RESCAN_ROWS_PER_LOOP
                    and loops * per_loop >= RESCAN_ROWS
                ):
                    rescanned.append((per_loop, loops, scanned))
            if rescanned:
                per_loop, loops, scanned = max(rescanned, key=lambda r: r[0])
                name = scanned.get("Relation Name") or scanned.get("CTE Name")
                what = scanned["Node Type"] + (f" on {name}" if name else "")
                found.append(f"Nested Loop: {what} read {loops} times, {per_loop:.0f} rows each")
        for child in node.get("Plans", []):
            walk(child)

    walk(plan)
    return found


def _check_plans(db: Database, models: dict[str, str], seconds: float | None) -> dict:
    """EXPLAIN ANALYZE of each model: its nested loops that rescan (a model that does not finish
    in ``seconds`` says so)."""
    out = {}
    conn = db.connect()
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            if seconds:
                cur.execute("select set_config('statement_timeout', %s, false)", (f"{seconds}s",))
            for name, code in models.items():
                try:
                    cur.execute(f"explain (analyze, timing off, format json) {code}")
                except Exception as exc:  # the budget, or a model that cannot run alone
                    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                    out[name] = [f"EXPLAIN ANALYZE did not finish: {first}"]
                    continue
                plan = cur.fetchone()[0]
                plan = json.loads(plan) if isinstance(plan, str) else plan
                out[name] = rescans(plan[0]["Plan"])
    finally:
        conn.close()
    return out


def growth_failures(results: list[dict]) -> list[str]:
    """Each node, and the apply, whose time grew more than GROWTH_LIMIT times as fast as the
    data between two consecutive finished scales, its time at the smaller one counted as at
    least GROWTH_FLOOR_SECONDS (the fixed cost), one line each naming the scale and the node."""
    out = []
    for low, high in zip(results, results[1:], strict=False):
        data = high["sessions"] / low["sessions"]
        limit = GROWTH_LIMIT * data
        low_seconds = _timed(low)
        for node, seconds in _timed(high).items():
            before = low_seconds.get(node)
            if before is None:
                continue
            ratio = seconds / max(before, GROWTH_FLOOR_SECONDS)
            if ratio > limit:
                out.append(
                    f"x{high['scale']}: {node}: {seconds:g} s, ×{ratio:.1f} its {before:g} s at "
                    f"x{low['scale']} for ×{data:g} the data (limit ×{limit:g}, "
                    f"below {GROWTH_FLOOR_SECONDS:g} s counts as {GROWTH_FLOOR_SECONDS:g} s)"
                )
    return out


def _timed(result: dict) -> dict[str, float]:
    """A scale's dbt nodes and its apply (``apply``), in seconds."""
    timed = dict(result.get("node_seconds", {}))
    if result.get("apply_seconds") is not None:
        timed["apply"] = result["apply_seconds"]
    return timed


def bench_scales(
    scratch: Scratch,
    scales=DEFAULT_SCALES,
    variables: dict | None = None,
    max_build_seconds: float | None = DEFAULT_MAX_BUILD_SECONDS,
    log=print,
) -> dict:
    """Each scale in turn on one scratch database, until one does not finish in time."""
    db = scratch.create("scales")
    with using(db):
        return _measure(db, scales, variables or {}, max_build_seconds, log)


def _measure(db: Database, scales, variables: dict, max_build_seconds: float | None, log) -> dict:
    from racemap.mapping.apply import apply_updates

    log("scales: loading the real data as universe 0 ...")
    base = _setup_universe_base(db, variables, log)
    results, unfinished, failures = [], [], []
    # As a run builds (racemap.mapping.dbt.build): unit tests run on fixtures, whatever the scale.
    exclude = ["--exclude", "resource_type:seed", "--exclude-resource-type", "unit_test"]
    plans, rescanning = {}, {}
    largest = max(int(s) for s in scales)
    printed: dict[str, str] = {}
    for copies in sorted(set(int(s) for s in scales)):
        log(f"scales: x{copies}: generating ...")
        volume = _generate_scale(db, copies)
        log(
            f"scales: x{copies}: {volume['races']} races, {volume['meetings']} meetings, "
            f"{volume['sessions']} sessions; dbt build ..."
        )
        start = time.perf_counter()
        with _cancel_after(db, max_build_seconds) as cancelled:
            outcome = dbt.invoke(["build", *exclude], variables)
        build_seconds = time.perf_counter() - start
        nodes = _node_seconds(outcome)
        models_sql = _joined_models(outcome)
        printed.update({k: v for k, v in models_sql.items() if k in PRINTED_PLANS})
        if cancelled or not outcome.success:
            why = (
                f"dbt build cancelled after {max_build_seconds:g} s (the budget per scale)"
                if cancelled
                else "dbt build failed: " + "; ".join(outcome.failures[:3])
            )
            running = _failed_nodes(outcome)
            log(f"scales: x{copies}: {why}")
            failures.append(
                f"x{copies}: {', '.join(running) or 'dbt build'}: did not finish: {why}"
            )
            unfinished.append(
                {
                    "scale": copies,
                    **volume,
                    "finished": False,
                    "reason": why,
                    "running": running,
                    "dbt_build_seconds": round(build_seconds, 3),
                    "nodes_finished": {k: v for k, v in nodes.items() if v},
                }
            )
            if copies == largest:
                log(f"scales: x{copies}: EXPLAIN (estimates only: the build did not finish) ...")
                plans.update(
                    _explained(db, printed, f"x{copies}, EXPLAIN without ANALYZE", analyze=False)
                )
            break
        log(f"scales: x{copies}: EXPLAIN ANALYZE of {len(models_sql)} models that join ...")
        checked = _check_plans(db, models_sql, max_build_seconds)
        rescanning[f"x{copies}"] = checked
        failures += [f"x{copies}: model:{k}: {f}" for k, v in checked.items() for f in v]
        models = {k: v for k, v in nodes.items() if k.startswith("model:")}
        tests = {k: v for k, v in nodes.items() if "test:" in k}
        log(f"scales: x{copies}: apply ...")
        start = time.perf_counter()
        applied = apply_updates(
            db, f"bench-x{copies}-{uuid.uuid4().hex[:6]}", RacesTable.from_vars(variables)
        )
        apply_seconds = time.perf_counter() - start
        by_reason = dict(
            rows(
                db,
                "select coalesce(reason, 'mapped'), count(*) from racemap.race_openf1_mapping"
                " group by 1 order by 1",
            )
        )
        results.append(
            {
                "scale": copies,
                **volume,
                "finished": True,
                "dbt_build_seconds": round(build_seconds, 3),
                "models_seconds": round(sum(models.values()), 3),
                "tests_seconds": round(sum(tests.values()), 3),
                "matching_model_seconds": models.get("model:int_races_matched_to_meetings"),
                "mapping_model_seconds": models.get("model:race_openf1_mapping"),
                "slowest_nodes": dict(sorted(nodes.items(), key=lambda kv: -kv[1])[:3]),
                "node_seconds": nodes,
                "apply_seconds": round(apply_seconds, 3),
                "applied": applied.applied,
                "conflicts": applied.conflicts,
                "by_reason": by_reason,
            }
        )
    if results:
        done = results[-1]["scale"]
        if unfinished:  # the tables hold the unfinished scale: back to the last finished one
            _generate_scale(db, done)
        log(f"scales: x{done}: EXPLAIN ANALYZE ...")
        plans.update(_explained(db, printed, f"x{done}, EXPLAIN ANALYZE", analyze=True))
    first = results[0] if results else None
    for row in results:
        factor = row["scale"] / first["scale"]
        row["mapped_matches_scale"] = all(
            row["by_reason"].get(k, 0) == v * factor for k, v in first["by_reason"].items()
        ) and set(row["by_reason"]) == set(first["by_reason"])
    growth = []
    for low, high in zip(results, results[1:], strict=False):
        growth.append(
            {
                "from": low["scale"],
                "to": high["scale"],
                "data": round(high["sessions"] / low["sessions"], 1),
                **{
                    key: round(high[key] / low[key], 1) if low.get(key) and high.get(key) else None
                    for key in (
                        "dbt_build_seconds",
                        "models_seconds",
                        "matching_model_seconds",
                        "mapping_model_seconds",
                        "apply_seconds",
                    )
                },
            }
        )
    failures += growth_failures(results)
    return {
        "universe": {
            **base,
            "note": "universe 0 is the real data: the 2023-2025 OpenF1 snapshot (+1 synthetic "
            "cancelled meeting) and the real 2022-2026 races; universe u>0 copies it with "
            f"circuit_key+{CIRCUIT_OFFSET}u, meeting_key+{MEETING_OFFSET}u, "
            f"session_key+{SESSION_OFFSET}u, ids and circuit ids suffixed '~u<u>'",
        },
        "max_build_seconds": max_build_seconds,
        "growth_limit": f"×{GROWTH_LIMIT:g} the data ratio per node, "
        f"{GROWTH_FLOOR_SECONDS:g} s fixed cost",
        "results": results,
        "unfinished": unfinished,
        "growth": growth,
        "rescans": rescanning,
        "failures": failures,
        "explain": plans,
    }
