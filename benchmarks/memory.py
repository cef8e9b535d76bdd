"""Memory: the peak resident memory of racemap's largest answer, in a process of its own.

The largest answer racemap stores is one session of a telemetry endpoint: ``racemap sync
--race-id ID --endpoints car_data`` asks OpenF1 for the session's car_data in one request (a
sample about every 270 ms per car: "about 3.7 Hz", OpenF1's documentation) and validates and
writes it in one transaction. No recording of a whole session's car_data is bundled (every one
seen is over 4 MiB), so this part serves car_data shaped as OpenF1 sends it for a real race
session (Singapore 2024, session 9606: its 20 cars, its two-hour window, a sample every 270 ms:
533,320 records) from the local OpenF1 server, the first N records of it at each size, and runs
the sync's fetch and store of it (``fetch_and_store``, as ``racemap sync`` calls it) in a child
process. The figure is the child's peak resident memory (its own high-water mark, ``VmHWM``); a
child that stores an empty answer is the baseline (the interpreter, the imports, a connection).

Reported: each size's peak, its records, and the memory above the baseline per record. The
checks (``failures``: ``racemap bench`` exits 1 on any): the whole session's peak above
TARGET_MIB, and the memory per record growing more than GROWTH_LIMIT times between two sizes
(an answer held twice over, or worse than linear).
"""

from __future__ import annotations

import json
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from racemap.db import Database, parse_database_url
from racemap.errors import RacemapError, UsageError
from racemap.paths import PROJECT_DIR, SNAPSHOT_DIR

from .end_to_end import _last_line, _timed
from .scratch import Scratch, execute

SESSION_KEY, SEASON = 9606, 2024  # Singapore 2024, the race
SAMPLE_MS = 270  # OpenF1's car_data: about 3.7 samples a second per car
# None: the whole session. 0, the baseline, is always measured first.
DEFAULT_SIZES = (50_000, None)
# The whole session's answer, stored: at most this peak. An analyst's 8 GiB laptop runs a sync
# beside a notebook and a browser.
TARGET_MIB = 2048
# Memory per record may grow this much between two sizes (the allocator's arenas), not more.
GROWTH_LIMIT = 1.5


def sizes_text(sizes: tuple[int | None, ...]) -> str:
    """Sizes as ``--memory-records`` takes them: ``50000,all``."""
    return ",".join("all" if n is None else str(n) for n in sizes)


def parse_sizes(text: str | None) -> tuple[int | None, ...]:
    """``--memory-records 50000,all``: answer sizes in records (``all``: the whole session)."""
    if not text:
        return DEFAULT_SIZES
    sizes: list[int | None] = []
    for part in (p.strip() for p in str(text).split(",")):
        if part == "all":
            sizes.append(None)
        elif part.isdigit() and int(part) > 0:
            sizes.append(int(part))
        else:
            raise UsageError(
                f"--memory-records {text!r}: give record counts from 1, or all (the whole session)"
            )
    return tuple(sorted(set(sizes), key=lambda n: float("inf") if n is None else n))


def session_car_data() -> list[dict]:
    """car_data of session 9606 as OpenF1 answers it (ordered by date): a sample every 270 ms
    for each car the bundled drivers list, over the session's window in the bundled sessions."""
    sessions = json.loads((SNAPSHOT_DIR / "sessions.json").read_text(encoding="utf-8"))
    (session,) = [s for s in sessions if s["session_key"] == SESSION_KEY]
    drivers = json.loads((SNAPSHOT_DIR / "drivers.json").read_text(encoding="utf-8"))
    cars = sorted({d["driver_number"] for d in drivers if d["session_key"] == SESSION_KEY})
    start = datetime.fromisoformat(session["date_start"])
    samples = int(
        (datetime.fromisoformat(session["date_end"]) - start).total_seconds() * 1000 // SAMPLE_MS
    )
    records = []
    for i in range(samples):
        date = (start + timedelta(milliseconds=i * SAMPLE_MS)).isoformat(timespec="microseconds")
        for n, car in enumerate(cars):
            step = i + 7 * n
            records.append(
                {
                    "brake": 100 if step % 23 == 0 else 0,
                    "date": date,
                    "driver_number": car,
                    "drs": 12 if step % 40 < 9 else 8,
                    "meeting_key": session["meeting_key"],
                    "n_gear": 1 + step % 8,
                    "rpm": 10_000 + (step * 37) % 2_500,
                    "session_key": SESSION_KEY,
                    "speed": 80 + (step * 13) % 250,
                    "throttle": (step * 11) % 101,
                }
            )
    return records


def peak_mib() -> float:
    """This process's peak resident memory in MiB: the kernel's high-water mark of the process's
    own memory (``VmHWM``). Not ``ru_maxrss``: on Linux a child's counts the parent's memory at
    the exec (seen here: a probe storing nothing "peaked" at the bench's 246 MiB)."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)  # kB
    import resource

    # Elsewhere (macOS: bytes), what the system gives.
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 1)


def bench_memory(scratch: Scratch, sizes=DEFAULT_SIZES, log=print) -> dict:
    from racemap.openf1.loader import ensure_raw_tables, load_openf1
    from racemap.testing.openf1_server import serve

    records = session_car_data()
    db = scratch.create("memory")
    ensure_raw_tables(db)
    load_openf1(db, [SEASON], offline=True)  # the session's row, as a sync finds it
    results = []
    # ``None`` (and any size past it): the whole session.
    counts = sorted({len(records) if n is None else min(n, len(records)) for n in sizes})
    with tempfile.TemporaryDirectory(prefix="racemap-bench-memory-") as empty:
        for size in (0, *counts):
            answer = records[:size]
            log(f"memory: car_data of session {SESSION_KEY}, {len(answer):,} records ...")
            execute(db, "delete from raw.openf1_car_data")  # each size inserts, none updates
            with serve(empty, records={"car_data": answer}) as server:
                results.append(_measure(db, server.base_url, len(answer)))
    return _report(results, len(records))


def _measure(db: Database, base_url: str, size: int) -> dict:
    command = [sys.executable, "-m", "benchmarks.memory", base_url]
    took, done = _timed(command, db.child_env(), PROJECT_DIR)
    if done.returncode != 0:
        raise RacemapError(f"the memory probe failed: {_last_line(done)}")
    stored = json.loads(done.stdout.strip().splitlines()[-1])
    if stored["rows_loaded"] != size:
        raise RacemapError(f"the memory probe stored {stored['rows_loaded']} of {size} records")
    return {"records": size, "peak_mib": stored["peak_mib"], "seconds": round(took, 3)}


def _report(results: list[dict], session_records: int) -> dict:
    baseline = results[0]["peak_mib"]
    for result in results[1:]:
        above = result["peak_mib"] - baseline
        result["kib_per_record"] = round(above * 1024 / result["records"], 3)
    failures = []
    sized = results[1:]
    for smaller, larger in zip(sized, sized[1:], strict=False):
        if larger["kib_per_record"] > GROWTH_LIMIT * max(smaller["kib_per_record"], 0.1):
            failures.append(
                f"{larger['records']:,} records take {larger['kib_per_record']} KiB a record, "
                f"{smaller['records']:,} took {smaller['kib_per_record']}: more than "
                f"{GROWTH_LIMIT}x (worse than linear)"
            )
    whole = [r for r in results if r["records"] == session_records]
    if whole and whole[0]["peak_mib"] > TARGET_MIB:
        failures.append(
            f"the whole session's car_data ({session_records:,} records) peaks at "
            f"{whole[0]['peak_mib']} MiB, over the target of {TARGET_MIB} MiB"
        )
    return {
        "endpoint": "car_data",
        "session_key": SESSION_KEY,
        "session_records": session_records,
        "baseline_mib": baseline,
        "target_mib": TARGET_MIB,
        "results": results,
        "failures": failures,
    }


def memory_lines(report: dict) -> list[str]:
    from .report import _table

    rows = []
    for r in report["results"]:
        label = "whole session" if r["records"] == report["session_records"] else ""
        per = "" if r["records"] == 0 else r["kib_per_record"]
        rows.append(
            [
                f"{r['records']:,}",
                label or ("baseline" if not r["records"] else ""),
                r["peak_mib"],
                per,
                r["seconds"],
            ]
        )
    return [
        "",
        f"MEMORY — racemap sync's fetch and store of one answer of {report['endpoint']} (session "
        f"{report['session_key']}, {report['session_records']:,} records in all), each in a "
        f"process of its own; target for the whole session: {report['target_mib']} MiB",
        _table(["records", "", "peak MiB", "KiB / record", "seconds"], rows),
    ]


def _probe(base_url: str) -> None:
    """The child: fetch session 9606's car_data from ``base_url`` and store it, as ``racemap
    sync`` does; prints what it stored (JSON). The database is the one the libpq variables and
    ``DATABASE_URL`` name."""
    import uuid

    from racemap.openf1.loader import fetch_and_store
    from racemap.settings import load_environment

    from .scratch import local_openf1_client

    db = parse_database_url(load_environment().database_url)
    url = f"{base_url}/car_data?session_key={SESSION_KEY}"
    with local_openf1_client(base_url) as client:
        load = fetch_and_store(
            db,
            client,
            lambda: client.fetch_session("car_data", SEASON, SESSION_KEY),
            uuid.uuid4().hex,
            False,
            audit=("car_data", SEASON, url, SESSION_KEY),
        )
    print(json.dumps({"rows_loaded": load.rows_loaded, "peak_mib": peak_mib()}))


if __name__ == "__main__":
    _probe(sys.argv[1])
