"""``racemap sync`` and the endpoint registry, against a real PostgreSQL.

The mapped races come from a small ``racemap.race_openf1_sessions`` written here (what a
``racemap run`` builds); the race data from the bundled snapshot (data/openf1/snapshot/, the
recorded sessions), read directly (``--offline``), served by the local OpenF1 server, or mocked
at the transport by pytest-httpx. No test touches the internet or sleeps.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import pytest
from conftest import AS_OF, database_copy, query
from psycopg2 import sql

from racemap import cli
from racemap.errors import RacemapError, UsageError
from racemap.openf1 import endpoints, loader, sync
from racemap.openf1.client import OpenF1Client
from racemap.openf1.endpoints import Fetch
from racemap.openf1.loader import ensure_raw_tables, store
from racemap.openf1.snapshot import read_session_snapshot, read_snapshot
from racemap.paths import DEFAULT_REPORTS_DIR, SNAPSHOT_DIR
from racemap.reporting import race_page
from racemap.testing.openf1_server import serve

BASE = "https://openf1.test/v1"
SESSIONS = {s["session_key"]: s for s in json.loads((SNAPSHOT_DIR / "sessions.json").read_text())}
# (race_id, session_key, kind) of recorded sessions (data/README.md, race data)
SINGAPORE_2024 = ("1140", 9606, "race")
RECORDED = [
    ("1100", 7953, "race"),
    ("1122", 9673, "race"),
    ("1122", 9672, "sprint"),
    SINGAPORE_2024,
    ("1144", 9636, "race"),
    ("1145", 9693, "race"),
]
DEFAULT_NAMES = endpoints.names(endpoints.DEFAULT_RACE_DATA)


@pytest.fixture(autouse=True)
def _anonymous(monkeypatch):
    for name in ("OPENF1_USERNAME", "OPENF1_PASSWORD", "OPENF1_RETRY_SECONDS", "OPENF1_RATE_LIMIT"):
        monkeypatch.delenv(name, raising=False)


def map_races(db, rows=RECORDED) -> None:
    """racemap.race_openf1_sessions as a ``racemap run`` leaves it, for ``rows``."""
    ensure_raw_tables(db)
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(
            "create table racemap.race_openf1_sessions (race_id text, meeting_key integer,"
            " session_key integer, session_kind text, session_name text, starts_at timestamptz)"
        )
        for race_id, key, kind in rows:
            s = SESSIONS[key]
            cur.execute(
                "insert into racemap.race_openf1_sessions values (%s, %s, %s, %s, %s, %s)",
                (race_id, s["meeting_key"], key, kind, s["session_name"], s["date_start"]),
            )


def client(base_url: str = BASE, **kwargs) -> OpenF1Client:
    return OpenF1Client(
        base_url=base_url, attempts=3, backoff=0.0, jitter=0.0, sleep=lambda _s: None, **kwargs
    )


def run_sync(db, c=None, lines=None, **kwargs):
    kwargs.setdefault("seasons", None)
    log = lines.append if lines is not None else lambda _line: None
    return sync.sync_race_data(sync.SyncRun(db, client=c, log=log, **kwargs))


def select(db, statement: sql.Composed, params=()) -> list[tuple]:
    with db.transaction() as conn, conn.cursor() as cur:
        cur.execute(statement, params or None)
        return cur.fetchall()


def count(db, endpoint: str, session_key: int) -> int:
    statement = sql.SQL("select count(*) from {} where session_key = %s and removed_at is null")
    return select(db, statement.format(endpoints.get(endpoint).relation), (session_key,))[0][0]


def loads(db, run_id: str) -> list[tuple]:
    return query(
        db,
        "select endpoint, session_key, status, requests, rows_loaded, rows_rejected"
        " from raw.openf1_loads where run_id = %s order by load_id",
        (run_id,),
    )


def recorded(endpoint: str, session_key: int) -> list[dict]:
    return read_session_snapshot(endpoint, 2024, session_key).records


# -- the registry --------------------------------------------------------------------------------
def _sample(endpoint) -> dict:
    """A minimal valid record of ``endpoint``: its key fields (and ``year``) filled."""
    values = {"int": 9606, "datetime": "2024-09-22T12:04:06.628000+00:00", "str": "RED FLAG"}
    record = {}
    for name in endpoint.keys:
        kind = endpoint.key_types[endpoint.keys.index(name)]
        record[name] = {"integer": values["int"], "timestamptz": values["datetime"]}.get(
            kind, values["str"]
        )
    for name, value in (("meeting_key", 1246), ("session_key", 9606), ("year", 2024)):
        if name in endpoint.model.model_fields:
            record[name] = value
    if "driver_number" in record:
        record["driver_number"] = 16
    return record


def test_every_registered_endpoint_flows_through_the_server_the_snapshot_and_the_loader(
    fresh_db, tmp_path
):
    ensure_raw_tables(fresh_db)
    samples = {e.name: _sample(e) for e in endpoints.REGISTRY}
    for e in endpoints.REGISTRY:
        (tmp_path / e.snapshot_file).write_text(json.dumps([samples[e.name]]))
    with serve(tmp_path) as server, client(server.base_url) as c:
        for e in endpoints.REGISTRY:  # schedule first: results are kept by their meeting's year
            if e.fetch is Fetch.SEASON:
                fetched, local = c.fetch(e.name, 2024), read_snapshot(e.name, 2024, tmp_path)
            elif e.fetch is Fetch.SEASON_MEETINGS:
                where = {"meeting_key>=": 1246, "meeting_key<=": 1246}
                fetched = c.fetch_where(e.name, 2024, where)
                local = read_snapshot(e.name, 2024, tmp_path)
            else:
                fetched = c.fetch_session(e.name, 2024, 9606)
                local = read_session_snapshot(e.name, 2024, 9606, tmp_path)
            assert fetched.records == local.records == [samples[e.name]], e.name
            with fresh_db.transaction() as conn:
                stored = store(conn, fetched, "registry", datetime.now(UTC))
            assert (stored.rows_loaded, stored.rows_rejected) == (1, 0), e.name
            row = select(
                fresh_db,
                sql.SQL("select {}, record from {}").format(
                    sql.SQL(", ").join(map(sql.Identifier, e.keys)), e.relation
                ),
            )
            assert len(row) == 1 and row[0][-1] == samples[e.name], e.name
        assert server.requests == len(endpoints.REGISTRY)


def test_the_bundled_race_data_validates_without_a_reject():
    """Every recorded record of the snapshot passes its model (the quirks are handled)."""
    for e in endpoints.RACE_DATA:
        path = SNAPSHOT_DIR / e.snapshot_file
        if path.exists():
            records = json.loads(path.read_text())
            good, bad = e.validate(records)
            assert bad == [] and len(good) == len(records), e.name


def test_a_race_data_date_is_an_iso_date_and_time_never_a_guess():
    """As OpenF1 sends it, or as pandas wrote it in the recordings; a Unix time in text or a date
    alone is a reject with its reason (they were read as a Unix time and as midnight UTC)."""
    pit = {"session_key": 9606, "driver_number": 4, "lap_number": 28}
    sent = [
        "2024-09-22T12:58:04.193000+00:00",
        "2024-09-22 12:58:04.193000+00:00",
        "2024-09-22T12:58:04",
    ]
    good, bad = endpoints.get("pit").validate(
        [{**pit, "driver_number": n, "date": d} for n, d in enumerate(sent)]
    )
    assert bad == [] and len(good) == 3  # three cars: one key each
    guessed = [{**pit, "date": "1727009884"}, {**pit, "date": "2024-09-22"}]
    good, bad = endpoints.get("pit").validate(guessed)
    assert good == [] and [reason for _raw, reason in bad] == [
        "date: Value error, a timestamp must be an ISO 8601 date and time such as"
        f" 2024-03-02T15:00:00+00:00, not {d!r}"
        for d in ("1727009884", "2024-09-22")
    ]


def test_an_offline_sync_reads_each_snapshot_file_once():
    """A sync asks every endpoint in turn, session after session: each file is read (and its
    JSON parsed) once, not again for each session (a cache smaller than the registry was)."""
    from racemap.openf1 import snapshot

    snapshot._by_session.cache_clear()
    sessions = [9606, 9672, 9636, 9693, 1]  # recorded ones and one nobody recorded
    for session_key in sessions:
        for e in endpoints.RACE_DATA:
            read_session_snapshot(e.name, 2024, session_key)
    info = snapshot._by_session.cache_info()
    assert (info.misses, info.hits) == (
        len(endpoints.RACE_DATA),
        len(endpoints.RACE_DATA) * (len(sessions) - 1),
    )


# -- offline: the recorded sessions and their quirks -------------------------------------------
def test_offline_sync_loads_the_recorded_sessions_with_their_quirks(fresh_db):
    map_races(fresh_db)
    lines = []
    result = run_sync(fresh_db, offline=True, lines=lines)

    assert result.requests == 0 and result.rows_rejected == 0
    assert query(fresh_db, "select count(*) from raw.openf1_rejects") == [(0,)]
    # one fetch per endpoint per session; a session nobody recorded is one line each
    assert len(result.loads) == len(RECORDED) * len(DEFAULT_NAMES)
    (singapore,) = [line for line in lines if "for session 9606 (race 1140 race)" in line]
    assert singapore.startswith("no ") and "race_control" in singapore.split(" for ")[0]
    # a session the snapshot lacks endpoints of is one line, whatever the number of them
    empty = [line for line in lines if line.endswith(" in the bundled snapshot")]
    sessions = [line.split(" for ", 1)[1] for line in empty]
    assert len(sessions) == len(set(sessions)) and singapore in empty
    assert not any("records no race data" in line for line in lines)  # each one has some
    # 9606: the per-driver laps with lap 1 of all 20 cars, not the date-filtered recording
    assert count(fresh_db, "laps", 9606) == 1179
    assert query(fresh_db, "select count(*) from raw.openf1_laps where session_key = 9606 "
                 "and lap_number = 1") == [(20,)]  # fmt: skip
    # a first lap without date_start; null speed traps; segments as jsonb lists with nulls
    assert query(
        fresh_db,
        "select date_start, lap_duration from raw.openf1_laps"
        " where session_key = 9636 and driver_number = 55 and lap_number = 1",
    ) == [(None, None)]
    assert query(
        fresh_db,
        "select count(*) filter (where i1_speed is null), count(*) filter (where st_speed is null)"
        " from raw.openf1_laps",
    )[0] > (0, 0)
    assert query(
        fresh_db,
        "select segments_sector_1 from raw.openf1_laps"
        " where session_key = 9606 and driver_number = 1 and lap_number = 1",
    ) == [([None, 2049, 2049, 2049, 2049, 2049, 2049, 2049],)]
    # a stint without lap_start / lap_end; CSV whole numbers written as 1.0 are integers
    assert query(
        fresh_db,
        "select lap_start, lap_end, compound from raw.openf1_stints"
        " where session_key = 9636 and driver_number = 18 and stint_number = 1",
    ) == [(None, None, "INTERMEDIATE")]
    assert query(
        fresh_db,
        "select lap_start, lap_end, record->'lap_start' from raw.openf1_stints"
        " where session_key = 9693 and driver_number = 18 and stint_number = 1",
    ) == [(1, 2, 1.0)]
    # weather dates as pandas wrote them are parsed; the record keeps them as sent
    assert query(
        fresh_db,
        "select date, record->>'date' from raw.openf1_weather where session_key = 9606"
        " order by date limit 1",
    ) == [
        (
            datetime(2024, 9, 22, 11, 7, 46, 576000, tzinfo=UTC),
            "2024-09-22 11:07:46.576000+00:00",
        )
    ]
    assert count(fresh_db, "position", 9672) == 209  # the sprint
    assert count(fresh_db, "overtakes", 9606) == 216
    assert query(fresh_db, "select distinct source from raw.openf1_laps") == [("snapshot",)]


# -- live: one request per endpoint per session, settled sessions never again ------------------
def test_one_request_per_endpoint_per_session_then_none_once_settled(fresh_db):
    map_races(fresh_db, [SINGAPORE_2024])
    with serve() as server, client(server.base_url) as c:
        first = run_sync(fresh_db, c)
        assert server.requests == first.requests == len(DEFAULT_NAMES)
        assert count(fresh_db, "laps", 9606) == 1179
        empty = [x.endpoint for x in first.loads if x.status == "empty"]
        assert empty == ["race_control", "intervals"]  # not in the recording
        server.reset()
        second = run_sync(fresh_db, c)
        # Settled but the empty ones, asked for again: one empty answer settles nothing.
        assert server.requests == second.requests == len(empty)
        assert second.count("skipped") == len(DEFAULT_NAMES) - len(empty)
        assert [x.endpoint for x in second.loads if x.status != "skipped"] == empty
        server.reset()
        # Empty twice after the window: OpenF1 has none for the session, settled.
        assert run_sync(fresh_db, c).requests == server.requests == 0
        server.reset()
        refreshed = run_sync(fresh_db, c, refresh=True)
        assert server.requests == refreshed.requests == len(DEFAULT_NAMES)
    assert count(fresh_db, "laps", 9606) == 1179
    assert query(fresh_db, "select distinct source from raw.openf1_laps") == [("live",)]


def test_within_the_correction_window_a_session_is_fetched_again(fresh_db):
    map_races(fresh_db, [SINGAPORE_2024])
    soon_after = datetime(2024, 9, 25, tzinfo=UTC)
    with serve() as server, client(server.base_url) as c:
        run_sync(fresh_db, c, today=soon_after, chosen=[endpoints.get("laps")])
        again = run_sync(fresh_db, c, today=soon_after, chosen=[endpoints.get("laps")])
    assert again.requests == 1 and again.count("ok") == 1


def test_a_session_fetched_with_a_reject_is_fetched_again(fresh_db, httpx_mock):
    """Long after the race (settled once fetched), a fetch of its laps with a reject settled it;
    now the laps are asked for again until an answer has none."""
    map_races(fresh_db, [SINGAPORE_2024])
    body = recorded("laps", 9606)
    httpx_mock.add_response(url=laps_url(), json=[{**body[0], "lap_number": "1"}, *body[1:]])
    httpx_mock.add_response(url=laps_url(), json=body)
    laps = [endpoints.get("laps")]
    with client() as c:
        assert run_sync(fresh_db, c, chosen=laps).rows_rejected == 1
        again = run_sync(fresh_db, c, chosen=laps)
        assert (again.requests, again.rows_rejected, again.rows_loaded) == (1, 0, 1179)
        assert run_sync(fresh_db, c, chosen=laps).requests == 0


def test_a_killed_sync_keeps_what_it_wrote_and_the_next_one_resumes(fresh_db, monkeypatch):
    map_races(fresh_db, [SINGAPORE_2024])
    real_store, calls = loader.store, []

    def killed_at_the_fourth(conn, fetched, *args, **kwargs):
        calls.append(fetched.endpoint)
        if len(calls) == 4:
            real_store(conn, fetched, *args, **kwargs)  # written, then the process dies
            raise RuntimeError("killed")
        return real_store(conn, fetched, *args, **kwargs)

    monkeypatch.setattr(loader, "store", killed_at_the_fourth)
    with serve() as server, client(server.base_url) as c:
        with pytest.raises(RuntimeError, match="killed"):
            run_sync(fresh_db, c, run_id="killed")
        done = DEFAULT_NAMES[:3]
        assert [(e, s) for e, s, *_ in loads(fresh_db, "killed")] == [
            (e, 9606) for e in DEFAULT_NAMES[:4]
        ]
        assert loads(fresh_db, "killed")[-1][2] == "failed"
        assert count(fresh_db, "pit", 9606) == 0  # the killed one rolled back whole
        monkeypatch.setattr(loader, "store", real_store)
        server.reset()
        resumed = run_sync(fresh_db, c, run_id="resumed")
    assert resumed.requests == len(DEFAULT_NAMES) - len(done)
    assert [x.endpoint for x in resumed.loads if x.status == "skipped"] == list(done)
    assert count(fresh_db, "pit", 9606) == 23


def test_a_session_in_progress_is_one_line_and_loses_nothing(fresh_db):
    map_races(fresh_db, [SINGAPORE_2024])
    with serve() as server, client(server.base_url) as c:
        run_sync(fresh_db, c, chosen=[endpoints.get("laps")])
        server.session_in_progress = True
        with pytest.raises(RacemapError) as caught:
            run_sync(fresh_db, c, refresh=True, run_id="locked-out")
    message = str(caught.value)
    assert "\n" not in message and "live F1 session" in message
    assert "OPENF1_USERNAME" in message
    assert loads(fresh_db, "locked-out")[0][:3] == ("drivers", 9606, "failed")
    assert count(fresh_db, "laps", 9606) == 1179


def test_with_credentials_a_session_in_progress_still_syncs(fresh_db):
    map_races(fresh_db, [SINGAPORE_2024])
    secret = ("racer", "s3cret-pw")
    with (
        serve(credentials=secret, session_in_progress=True) as server,
        client(server.base_url, credentials=secret) as c,
    ):
        result = run_sync(fresh_db, c, chosen=[endpoints.get("laps")])
    assert result.count("ok") == 1 and count(fresh_db, "laps", 9606) == 1179
    assert "s3cret" not in str(query(fresh_db, "select url from raw.openf1_loads"))


# -- answers that need handling --------------------------------------------------------------------
def laps_url(session_key: int = 9606) -> str:
    return f"{BASE}/laps?session_key={session_key}"


def test_rejects_are_quarantined_with_their_reason(fresh_db, httpx_mock):
    map_races(fresh_db, [SINGAPORE_2024])
    body = recorded("laps", 9606)
    body[0]["lap_number"] = "1"  # text where OpenF1 sends a number
    body[1]["is_pit_out_lap"] = "no"
    body[2]["session_key"] = 9999  # another session's lap in this answer
    body[3]["lap_number"] = 1.5
    httpx_mock.add_response(url=laps_url(), json=body)
    with client() as c:
        result = run_sync(fresh_db, c, chosen=[endpoints.get("laps")])
    assert (result.rows_loaded, result.rows_rejected) == (1175, 4)
    # The summary says where the reasons are, as a run's load line does.
    assert "1175 rows (4 rejected: why in raw.openf1_rejects; asked again by the next sync)" in (
        result.summary()
    )
    reasons = [r for (r,) in query(fresh_db, "select reason from raw.openf1_rejects order by 1")]
    assert [r.split(":")[0] for r in reasons] == [
        "is_pit_out_lap",
        "lap_number",
        "lap_number",
        "session_key 9999 in a response for session 9606",
    ]
    assert query(
        fresh_db,
        "select distinct r.endpoint, l.session_key from raw.openf1_rejects r"
        " join raw.openf1_loads l using (load_id)",
    ) == [("laps", 9606)]


def test_nan_infinity_and_nul_in_race_data_are_rejects(fresh_db, httpx_mock):
    """In a number, a jsonb field or a string: a reject with its reason, the other laps load.
    They failed the fetch (PostgreSQL stores none of them)."""
    map_races(fresh_db, [SINGAPORE_2024])
    body = recorded("laps", 9606)
    body[0]["lap_duration"] = float("inf")
    body[1]["segments_sector_1"] = [2049, float("nan")]
    body[2]["comment"] = "\x00"
    httpx_mock.add_response(url=laps_url(), content=json.dumps(body).encode())
    with client() as c:
        result = run_sync(fresh_db, c, chosen=[endpoints.get("laps")])
    assert (result.rows_loaded, result.rows_rejected) == (1176, 3)
    assert query(fresh_db, "select reason from raw.openf1_rejects order by reject_id") == [
        ("lap_duration: must be a finite number, not Infinity",),
        ("segments_sector_1.1: must be a finite number, not NaN",),
        ("comment: must not contain a NUL character (\\u0000)",),
    ]
    assert loads(fresh_db, result.run_id) == [("laps", 9606, "ok", 1, 1176, 3)]


def test_a_key_repeated_in_an_answer_is_counted_and_a_conflicting_record_quarantined(
    fresh_db, httpx_mock
):
    """Two records of one answer with the same key collapsed to one row without a word: a
    repeat with other values (Verstappen's lap 7 of 2024 Singapore sent again with another
    lap_duration) replaced the first silently. The first is a reject with its reason now, an
    identical repeat is loaded once, and one line says both."""
    map_races(fresh_db, [SINGAPORE_2024])
    body = recorded("laps", 9606)
    first, second = body[5], body[6]
    assert (first["driver_number"], first["lap_number"]) == (1, 6)
    assert (second["driver_number"], second["lap_number"], second["lap_duration"]) == (1, 7, 97.774)
    body += [dict(first), {**second, "lap_duration": 123.456}]
    httpx_mock.add_response(url=laps_url(), json=body)
    lines = []
    with client() as c:
        result = run_sync(fresh_db, c, lines, chosen=[endpoints.get("laps")])
    assert (result.rows_loaded, result.rows_rejected) == (1179, 1)
    assert query(fresh_db, "select reason, payload->>'lap_duration' from raw.openf1_rejects") == [
        (
            "repeated key (session_key 9606, driver_number 1, lap_number 7): a later record of the"
            " answer with the same key and other values was loaded",
            "97.774",
        )
    ]
    kept = "select lap_duration from raw.openf1_laps where driver_number = 1 and lap_number = 7"
    assert query(fresh_db, kept) == [(123.456,)]
    assert lines == [
        "laps of session 9606 (race 1140 race): 2 records repeated the key of a later one in the"
        " answer, the last of each loaded: 1 the same, 1 with other values (raw.openf1_rejects)"
    ]


def test_intervals_keep_empty_and_lapped_gaps_as_sent(fresh_db, httpx_mock):
    map_races(fresh_db, [SINGAPORE_2024])
    at = "2024-09-22T12:04:06.628000+00:00"
    body = [
        {"session_key": 9606, "meeting_key": 1246, "driver_number": 4, "date": at,
         "gap_to_leader": "", "interval": ""},
        {"session_key": 9606, "meeting_key": 1246, "driver_number": 1, "date": at,
         "gap_to_leader": "+1 LAP", "interval": 0.412},
        {"session_key": 9606, "meeting_key": 1246, "driver_number": 16, "date": at,
         "gap_to_leader": None, "interval": None},
    ]  # fmt: skip
    httpx_mock.add_response(url=f"{BASE}/intervals?session_key=9606", json=body)
    with client() as c:
        run_sync(fresh_db, c, chosen=[endpoints.get("intervals")])
    assert query(
        fresh_db,
        'select driver_number, gap_to_leader, "interval" from raw.openf1_intervals order by 1',
    ) == [(1, "+1 LAP", 0.412), (4, "", ""), (16, None, None)]


def test_an_empty_answer_is_one_line_and_removes_nothing(fresh_db, httpx_mock):
    map_races(fresh_db, [SINGAPORE_2024])
    httpx_mock.add_response(url=laps_url(), json=recorded("laps", 9606))
    httpx_mock.add_response(url=laps_url(), status_code=404, json={"detail": "No results found."})
    lines = []
    with client() as c:
        run_sync(
            fresh_db, c, chosen=[endpoints.get("laps")], today=datetime(2024, 9, 23, tzinfo=UTC)
        )
        result = run_sync(
            fresh_db,
            c,
            lines,
            chosen=[endpoints.get("laps")],
            today=datetime(2024, 9, 23, tzinfo=UTC),
        )
    assert result.count("empty") == 1
    assert lines == ["no laps for session 9606 (race 1140 race) from OpenF1 yet"]
    assert count(fresh_db, "laps", 9606) == 1179


def test_an_empty_answer_does_not_settle_a_session(fresh_db, httpx_mock):
    """Long after the race an empty answer (an outage, OpenF1 not done yet) settled the laps for
    good: every later sync asked for nothing. Now they are asked for again until they come."""
    map_races(fresh_db, [SINGAPORE_2024])
    httpx_mock.add_response(url=laps_url(), json=[])
    httpx_mock.add_response(url=laps_url(), json=recorded("laps", 9606))
    laps = [endpoints.get("laps")]
    with client() as c:
        assert run_sync(fresh_db, c, chosen=laps).count("empty") == 1
        again = run_sync(fresh_db, c, chosen=laps)
        assert (again.requests, again.count("ok"), again.rows_loaded) == (1, 1, 1179)
        assert run_sync(fresh_db, c, chosen=laps).requests == 0  # settled: it has rows


def test_a_lap_openf1_no_longer_lists_is_marked_removed(fresh_db, httpx_mock):
    map_races(fresh_db, [SINGAPORE_2024])
    body = recorded("laps", 9606)
    httpx_mock.add_response(url=laps_url(), json=body)
    httpx_mock.add_response(url=laps_url(), json=body[1:])
    with client() as c:
        run_sync(fresh_db, c, chosen=[endpoints.get("laps")])
        run_sync(fresh_db, c, chosen=[endpoints.get("laps")], refresh=True)
    assert query(
        fresh_db,
        "select driver_number, lap_number from raw.openf1_laps where removed_at is not null",
    ) == [(body[0]["driver_number"], body[0]["lap_number"])]


def test_a_lap_whose_key_comes_as_text_is_rejected_and_not_marked_removed(fresh_db, httpx_mock):
    """session_key "9606": a reject, but the lap is still listed; it was marked removed."""
    map_races(fresh_db, [SINGAPORE_2024])
    body = recorded("laps", 9606)
    httpx_mock.add_response(url=laps_url(), json=body)
    as_text = [{**body[0], "session_key": "9606"}, *body[1:]]
    httpx_mock.add_response(url=laps_url(), json=as_text)
    with client() as c:
        run_sync(fresh_db, c, chosen=[endpoints.get("laps")])
        again = run_sync(fresh_db, c, chosen=[endpoints.get("laps")], refresh=True)
    assert (again.rows_rejected, again.loads[0].rows_removed) == (1, 0)
    assert query(fresh_db, "select count(*) from raw.openf1_laps where removed_at is not null") == [
        (0,)
    ]


def test_an_answer_with_a_lap_key_it_cannot_read_removes_nothing(fresh_db, httpx_mock):
    """A lap without its lap_number might be any lap: the lap missing from the answer is kept
    current, and the sync says why nothing was removed."""
    map_races(fresh_db, [SINGAPORE_2024])
    body = recorded("laps", 9606)
    httpx_mock.add_response(url=laps_url(), json=body)
    unreadable = [{k: v for k, v in body[1].items() if k != "lap_number"}, *body[2:]]
    httpx_mock.add_response(url=laps_url(), json=unreadable)  # body[0] is not in it
    lines = []
    with client() as c:
        run_sync(fresh_db, c, chosen=[endpoints.get("laps")])
        again = run_sync(fresh_db, c, lines, chosen=[endpoints.get("laps")], refresh=True)
    assert (again.rows_rejected, again.loads[0].rows_removed) == (1, 0)
    assert count(fresh_db, "laps", 9606) == 1179
    assert lines == [
        "laps of session 9606 (race 1140 race): removed nothing: 1 record whose key could not"
        " be read (raw.openf1_rejects)"
    ]


def test_the_removal_stays_a_hash_lookup_however_many_keys_an_answer_lists(fresh_db):
    """The rows an answer no longer lists are found by NOT IN over its keys, which PostgreSQL
    hashes only while it expects the keys to fit in work_mem; past that every stored row scans
    the whole list. At the default 4 MB that was about 210,000 keys, and a session's car_data
    is over 500,000 records (a sample every 270 ms per car): 250,000 took over 150 s to store,
    a whole session had not finished after 7 minutes (``racemap bench --parts memory`` stores
    one). Here the server's
    work_mem is its least (64 kB: under 2,000 keys) and the answer 20,000 records: the removal
    statement racemap sent is planned hashed after the setting it sent, and not without it."""
    import io

    from psycopg2.extras import LoggingConnection

    from benchmarks.memory import SEASON, SESSION_KEY, session_car_data
    from racemap.openf1.client import FetchResult

    ensure_raw_tables(fresh_db)
    answer = session_car_data()[:20_000]
    sent = io.StringIO()
    conn = fresh_db.connect(connection_factory=LoggingConnection)
    try:
        conn.initialize(sent)
        with conn.cursor() as cur:
            cur.execute("set work_mem = '64kB'")
        url = f"{BASE}/car_data?session_key={SESSION_KEY}"
        fetched = FetchResult("car_data", SEASON, url, 200, answer, 1, SESSION_KEY)
        load = store(conn, fetched, "run", datetime.now(UTC), source="live")
        with conn.cursor() as cur:
            cur.execute("show work_mem")  # the statement's setting ended with it
            assert cur.fetchone() == ("64kB",)
        conn.commit()
    finally:
        conn.close()
    assert (load.rows_loaded, load.rows_removed) == (20_000, 0)
    lines = sent.getvalue().splitlines()
    (setting,) = [line for line in lines if "greatest(pg_size_bytes" in line]
    (removal,) = [line for line in lines if line.startswith('update "raw"."openf1_car_data"')]

    def plan(*before: str) -> str:
        with fresh_db.transaction() as conn, conn.cursor() as cur:
            for statement in ("set local work_mem = '64kB'", *before):
                cur.execute(statement)
            cur.execute("explain " + removal)
            return "\n".join(row[0] for row in cur.fetchall())

    assert "hashed SubPlan" in plan(setting)
    assert "SubPlan" in plan() and "hashed SubPlan" not in plan()


def test_future_sessions_cost_no_request(fresh_db, httpx_mock):
    map_races(fresh_db, [SINGAPORE_2024])
    lines = []
    with client() as c:
        result = run_sync(fresh_db, c, lines, today=datetime(2024, 9, 1, tzinfo=UTC))
        assert run_sync(fresh_db, c, lines, seasons=[2019]).sessions == []
    assert result.requests == 0 and result.count("not_started") == len(DEFAULT_NAMES)
    assert lines == [
        "1 session has not started yet: nothing to fetch for it",
        "no mapped race/sprint session in 2019 to sync: racemap lookup --race-id ID says why a"
        " race is not mapped (--seasons and --sessions choose others)",
    ]
    assert result.summary().startswith("synced 1 session: 0 fetches loaded 0 rows")
    # One of each in the singular (it said "1 fetches loaded 1 rows ... 1 OpenF1 requests").
    one = dataclasses.replace(
        result, loads=[loader.EndpointLoad("laps", "ok", rows_loaded=1)], requests=1
    )
    assert one.summary().startswith("synced 1 session: 1 fetch loaded 1 row (0 rejected)")
    assert one.summary().endswith("; 1 OpenF1 request")


# -- the command -----------------------------------------------------------------------------------
def test_racemap_sync_offline_on_the_command_line(mapped_template, tmp_path, capsys):
    """After a run: load, build the race data marts, check them, render the race pages."""
    with database_copy(mapped_template[0]) as db:
        args = ["sync", "--database-url", db.url, "--offline", "--seasons", "2024"]
        # The vars the copy was parsed with (conftest._parsed_state): no full dbt parse.
        args += ["--reports-dir", str(tmp_path), "--var", f"as_of={AS_OF}"]
        assert cli.main([*args, "--endpoints", "laps,stints"]) == 0
        out = capsys.readouterr().out
        assert "fetches loaded" in out and "race data verdict: ok" in out
        assert count(db, "laps", 9673) == 1033
        assert query(db, "select count(*) from racemap.race_laps where session_key = 9673") == [
            (1033,)
        ]
        assert (tmp_path / "races" / "1138.html").exists()
        # Recorded as a run is (racemap.sync_runs), and racemap status shows it.
        ((run_id, verdict, sessions, pages),) = query(
            db, "select run_id, verdict, sessions, pages from racemap.sync_runs"
        )
        assert (verdict, sessions) == ("ok", 30) and pages > 0  # 2024: 24 races, 6 sprints
        assert cli.main(["status", "--database-url", db.url]) == 0
        assert f"last sync {run_id}, finished " in capsys.readouterr().out
        assert cli.main([*args, "--race-id", "1138", "--sessions", "race"]) == 0
        rendered = "-> race page of race 1138" in capsys.readouterr().out
        assert rendered  # positions, weather, ... are new for race 1138
        cli.main(["status", "--database-url", db.url])
        assert ": ok (1 session, 1 page rendered)" in capsys.readouterr().out
        # The same sync again: the data is as it was, so every page is kept, none rendered.
        pages = sorted(p.name for p in (tmp_path / "races").glob("*.html"))
        assert cli.main([*args, "--endpoints", "laps,stints"]) == 0
        out = capsys.readouterr().out
        assert "-> race page" not in out
        assert f"pages of {len(pages)} sessions kept: their race data did not change" in out
        assert sorted(p.name for p in (tmp_path / "races").glob("*.html")) == pages
        # One sync, three pages rendered again, each for its own reason, and only they:
        # - a page an earlier release laid out (another notebook or race_page.py), its data
        #   unchanged (race 1121): the version a page keeps names the code that rendered it;
        notebook = tmp_path / "races" / "1121.ipynb"
        content = json.loads(notebook.read_text())
        parameters = content["metadata"]["papermill"]["parameters"]
        current = f" page {race_page.page_code_version()}"
        assert parameters["data_version"].endswith(current)
        parameters["data_version"] = parameters["data_version"].replace(current, " page 0ld")
        notebook.write_text(json.dumps(content))
        # - a page missing from the published set, though nothing changed (race 1138);
        (tmp_path / "races" / "1138.html").unlink()
        # - a lap of race 1125 that differs from the recording is loaded again: a newer version.
        query(
            db,
            "update raw.openf1_laps set record = record || '{\"edited\": true}'"
            " where session_key = 9673 and driver_number = 1 and lap_number = 10",
        )
        assert cli.main([*args, "--endpoints", "laps"]) == 0
        out = capsys.readouterr().out
        rendered = [line for line in out.splitlines() if line.startswith("-> race page")]
        assert sorted(rendered) == [
            "-> race page of race 1121",
            "-> race page of race 1125",
            "-> race page of race 1138",
        ]
        kept = len(pages) - 3
        assert f"pages of {kept} session{'' if kept == 1 else 's'} kept" in out
        assert (tmp_path / "races" / "1138.html").exists()
        # --refresh renders the pages again, the data unchanged.
        assert cli.main([*args, "--endpoints", "laps", "--race-id", "1138", "--refresh"]) == 0
        out = capsys.readouterr().out
        rendered = [line for line in out.splitlines() if line.startswith("-> race page")]
        assert rendered == ["-> race page of race 1138"] and "kept" not in out


def test_the_page_code_version_follows_the_notebook_and_the_module(tmp_path):
    copies = []
    for source in race_page.PAGE_SOURCES:
        copy = tmp_path / source.name
        copy.write_bytes(source.read_bytes())
        copies.append(copy)
    assert race_page.page_code_version(copies) == race_page.page_code_version()
    copies[0].write_bytes(copies[0].read_bytes().replace(b"Pit stops", b"Pit stops."))
    assert race_page.page_code_version(copies) != race_page.page_code_version()


def test_racemap_sync_usage_and_failures_are_one_line(fresh_db, capsys):
    url = fresh_db.url
    assert cli.main(["sync", "--database-url", url, "--endpoints", "laps,tyres"]) == 2
    assert cli.main(["sync", "--database-url", url, "--endpoints", "car_data"]) == 2
    assert cli.main(["sync", "--database-url", url, "--sessions", "warmup"]) == 2
    for command in ("sync", "lookup"):  # a blank race id: it answered "no race with id in ..."
        with pytest.raises(SystemExit) as stopped:  # argparse's usage exit
            cli.main([command, "--database-url", url, "--race-id", " "])
        assert stopped.value.code == 2
        assert "argument --race-id: give a race id" in capsys.readouterr().err
    assert cli.main(["sync", "--database-url", url, "--offline"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        "racemap: no mapped races in this database (racemap.race_openf1_sessions is missing): "
        "run racemap run first"
    )
    # The failed sync published nothing and left no folder in the reports, and created
    # nothing in a database racemap has not run on (the wrong DATABASE_URL, say).
    assert not (DEFAULT_REPORTS_DIR / fresh_db.dbname).exists()
    assert (
        query(fresh_db, "select nspname from pg_namespace where nspname in ('raw', 'racemap')")
        == []
    )
    with pytest.raises(UsageError):
        sync.parse_endpoints("location", ())
    assert sync.parse_endpoints("location", ("1140",)) == (endpoints.get("location"),)


def test_a_named_race_outside_the_seasons_given_is_told_so(mapped_template, capsys):
    """--race-id with --seasons that leave its sessions out: one line naming their season (it
    said the race had no mapped session, as if it were not mapped)."""
    with database_copy(mapped_template[0]) as db:
        args = ["sync", "--database-url", db.url, "--offline", "--race-id", "1138"]
        assert cli.main([*args, "--seasons", "2023"]) == 1
        assert capsys.readouterr().err.splitlines() == [
            "racemap: race 1138: its race/sprint session is in 2024, not in --seasons 2023: leave"
            " --seasons out (a named race needs none) or add the season"
        ]
        assert (
            cli.main([*args, "--race-id", "1098", "--race-id", "99999", "--seasons", "2025"]) == 1
        )
        assert capsys.readouterr().err.splitlines() == [
            "racemap: races 1098, 1138: their race/sprint sessions are in 2023, 2024, not in"
            " --seasons 2025: leave --seasons out (a named race needs none) or add the season;"
            " race 99999: no mapped race/sprint session (racemap lookup --race-id ID says why;"
            " --sessions picks other kinds)"
        ]
        assert query(db, "select count(*) from raw.openf1_laps") == [(0,)]  # nothing loaded


def test_a_reports_folder_it_cannot_write_stops_the_sync_before_it_loads(
    applied_db, tmp_path, capsys
):
    """On a copy: the failed sync is recorded (racemap.sync_runs), and racemap status of the
    shared mapped demo would say so to the tests after this one."""
    db = applied_db
    (tmp_path / "a-file").write_text("")
    laps_before = query(db, "select count(*) from raw.openf1_laps")
    reports = tmp_path / "a-file" / "reports"
    args = ["sync", "--database-url", db.url, "--offline", "--reports-dir", str(reports)]
    assert cli.main(args) == 1
    out, err = capsys.readouterr()
    assert err.startswith(f"racemap: cannot write the reports in {reports} ") and "\n" not in (
        err.rstrip("\n")
    )
    assert "make that folder writable" in err
    assert out == ""  # nothing loaded, built or rendered first
    assert query(db, "select count(*) from raw.openf1_laps") == laps_before
    assert query(db, "select verdict, stopped_at from racemap.sync_runs") == [("failed", "load")]
