"""The OpenF1 loader against a real PostgreSQL: what loads, what is rejected, how many requests.

A season is four fetches: meetings and sessions (``?year=``), then session_result and
starting_grid over the season's meeting-key range.

HTTP goes through pytest-httpx's mock transport (bodies from the recorded data in data/openf1/
and tests/fixtures/openf1/) or through the local OpenF1 server of racemap.testing.openf1_server. No
test touches the internet or sleeps: retries wait zero seconds.
"""

from __future__ import annotations

import copy
import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from datetime import UTC, datetime

import httpx
import pytest
from conftest import query
from test_openf1_client import (
    BASE,
    SAMPLES_2026,
    fixture,
    samples_2026,
    snapshot,
    truncated,
    url,
)

from racemap.errors import Interrupted, RacemapError
from racemap.openf1 import endpoints
from racemap.openf1.client import OpenF1Client, build_query
from racemap.openf1.loader import _progress, load_audit, load_openf1
from racemap.openf1.snapshot import read_snapshot
from racemap.paths import SNAPSHOT_DIR
from racemap.reporting.run_summary import load_counts
from racemap.testing.openf1_server import serve

TODAY = datetime(2026, 6, 1, tzinfo=UTC)  # pins "the current season" to 2026
ATTEMPTS = 3


def client(base_url: str = BASE) -> OpenF1Client:
    """Retries as in production, but without waiting."""
    return OpenF1Client(
        base_url=base_url, attempts=ATTEMPTS, backoff=0.0, jitter=0.0, sleep=lambda _s: None
    )


def load(db, seasons, c=None, **kwargs):
    with c or client() as c:
        return load_openf1(db, seasons, client=c, today=TODAY, **kwargs)


WEEKEND = ("session_result", "starting_grid")
ALL_RECORDS: dict[str, list[dict]] = {}  # filled by weekend()
# Rows of the recorded snapshot per season (data/README.md): session_result, starting_grid.
WEEKEND_ROWS = {
    2023: {"session_result": 2171, "starting_grid": 555},
    2024: {"session_result": 2441, "starting_grid": 599},
    2025: {"session_result": 2451, "starting_grid": 580},
}


def weekend(endpoint: str, low: int, high: int) -> list[dict]:
    """What OpenF1 answers for ``?meeting_key>=low&meeting_key<=high``: recorded rows."""
    if endpoint not in ALL_RECORDS:
        ALL_RECORDS[endpoint] = [
            r for season in WEEKEND_ROWS for r in read_snapshot(endpoint, season).records
        ]
    return [copy.deepcopy(r) for r in ALL_RECORDS[endpoint] if low <= r["meeting_key"] <= high]


def weekend_url(endpoint: str, low: int, high: int) -> str:
    return f"{BASE}/{endpoint}?{build_query({'meeting_key>=': low, 'meeting_key<=': high})}"


def meeting_range(meetings: list[dict], season: int) -> tuple[int, int] | None:
    """The key range the loader asks for: that of the meetings that load."""
    good, _ = endpoints.get("meetings").validate(meetings)
    keys = [p.meeting_key for _raw, p in good if p.year == season]
    return (min(keys), max(keys)) if keys else None


def answer(
    httpx_mock, season: int, meetings=None, sessions=None, results=None, grid=None, weekend_too=True
) -> None:
    """Register one good answer per endpoint: the recorded season unless told otherwise."""
    meetings = snapshot("meetings", season) if meetings is None else meetings
    for endpoint, body in (("meetings", meetings), ("sessions", sessions)):
        body = snapshot(endpoint, season) if body is None else body
        httpx_mock.add_response(url=url(endpoint, season), json=body)
    span = meeting_range(meetings, season)
    if not weekend_too or span is None:
        return
    for endpoint, body in (("session_result", results), ("starting_grid", grid)):
        body = weekend(endpoint, *span) if body is None else body
        httpx_mock.add_response(url=weekend_url(endpoint, *span), json=body)


def table_counts(db) -> dict:
    rows = query(
        db,
        "select 'meetings', year, count(*) from raw.openf1_meetings group by year"
        " union all select 'sessions', year, count(*) from raw.openf1_sessions group by year",
    )
    return {(endpoint, year): n for endpoint, year, n in rows}


def weekend_counts(db) -> dict:
    """(endpoint, season) -> rows, the season through the row's meeting."""
    rows = query(
        db,
        "select 'session_result', m.year, count(*) from raw.openf1_session_results r"
        " join raw.openf1_meetings m using (meeting_key) group by m.year"
        " union all select 'starting_grid', m.year, count(*) from raw.openf1_starting_grid g"
        " join raw.openf1_meetings m using (meeting_key) group by m.year",
    )
    return {(endpoint, year): n for endpoint, year, n in rows}


def weekend_audit(season: int) -> list[tuple]:
    """The audit rows of a good race-weekend load of a recorded season."""
    return [(e, season, "ok", 200, 1, n, n, 0) for e, n in WEEKEND_ROWS[season].items()]


def rejects(db) -> list[tuple]:
    return query(
        db, "select endpoint, season, reason, payload from raw.openf1_rejects order by reject_id"
    )


def audit(db, run_id) -> list[tuple]:
    return query(
        db,
        "select endpoint, season, status, http_status, requests, rows_received, rows_loaded,"
        " rows_rejected from raw.openf1_loads where run_id = %s order by load_id",
        (run_id,),
    )


def records_of(db, endpoint: str, season: int) -> dict:
    key = "meeting_key" if endpoint == "meetings" else "session_key"
    rows = query(db, f"select {key}, record from raw.openf1_{endpoint} where year = %s", (season,))
    return dict(rows)


# -- a flaky, rate-limited API -------------------------------------------------------------------
FLAKY_FIRST_ANSWERS = {
    "429-retry-after": dict(
        status_code=429, headers={"Retry-After": "1"}, content=fixture("rate_limited_429.json")
    ),
    "500": dict(status_code=500, content=fixture("server_error_500.html")),
    "502": dict(status_code=502, content=fixture("bad_gateway_502.html")),
    "503": dict(status_code=503, content=fixture("unavailable_503.txt")),
    "truncated-json": dict(content=truncated(snapshot("meetings", 2024))),
    "html-200": dict(content=fixture("html_200.html")),
}
FLAKY_EXCEPTIONS = {
    "timeout": httpx.ReadTimeout("The read operation timed out"),
    "dropped-connection": httpx.RemoteProtocolError(
        "Server disconnected without sending a response."
    ),
}


@pytest.mark.parametrize("case", [*FLAKY_FIRST_ANSWERS, *FLAKY_EXCEPTIONS])
def test_a_flaky_answer_is_retried_and_everything_loads(fresh_db, httpx_mock, case):
    if case in FLAKY_EXCEPTIONS:
        httpx_mock.add_exception(FLAKY_EXCEPTIONS[case], url=url("meetings", 2024))
    else:
        httpx_mock.add_response(url=url("meetings", 2024), **FLAKY_FIRST_ANSWERS[case])
    answer(httpx_mock, 2024)

    result = load(fresh_db, [2024])

    assert table_counts(fresh_db) == {("meetings", 2024): 25, ("sessions", 2024): 123}
    assert weekend_counts(fresh_db) == {
        ("session_result", 2024): 2441,
        ("starting_grid", 2024): 599,
    }
    assert rejects(fresh_db) == []
    assert result.requests == 5 == len(httpx_mock.get_requests())
    assert audit(fresh_db, result.run_id) == [
        ("meetings", 2024, "ok", 200, 2, 25, 25, 0),
        ("sessions", 2024, "ok", 200, 1, 123, 123, 0),
        *weekend_audit(2024),
    ]


def test_404_no_results_is_an_empty_season(fresh_db, httpx_mock):
    for endpoint in ("meetings", "sessions"):
        httpx_mock.add_response(
            url=url(endpoint, 2022), status_code=404, content=fixture("no_results_404.json")
        )

    result = load(fresh_db, [2022])

    assert table_counts(fresh_db) == {} and rejects(fresh_db) == []
    assert result.requests == 2  # no meeting: no race-weekend data to ask for
    assert [x.status for x in result.loads[2:]] == ["skipped", "skipped"]
    assert audit(fresh_db, result.run_id) == [
        ("meetings", 2022, "ok", 404, 1, 0, 0, 0),
        ("sessions", 2022, "ok", 404, 1, 0, 0, 0),
    ]


@pytest.mark.parametrize(
    "body",
    [fixture("html_200.html"), truncated(snapshot("meetings", 2024))],
    ids=["html", "truncated-json"],
)
def test_a_200_that_stays_bad_fails_loudly_and_never_loads_as_empty(fresh_db, httpx_mock, body):
    answer(httpx_mock, 2024)
    before = load(fresh_db, [2024])
    loaded = records_of(fresh_db, "meetings", 2024)
    for _ in range(ATTEMPTS):
        httpx_mock.add_response(url=url("meetings", 2024), content=body)

    with pytest.raises(RacemapError, match="meetings for 2024 failed after 3 attempts: HTTP 200"):
        load(fresh_db, [2024], refresh=True, run_id="bad-200")

    assert records_of(fresh_db, "meetings", 2024) == loaded  # the earlier load is intact
    assert table_counts(fresh_db) == {("meetings", 2024): 25, ("sessions", 2024): 123}
    assert rejects(fresh_db) == []
    assert before.requests == 4 and len(httpx_mock.get_requests()) == 4 + ATTEMPTS
    assert audit(fresh_db, "bad-200") == [("meetings", 2024, "failed", None, 3, 0, 0, 0)]


# -- records ------------------------------------------------------------------------------------
def test_duplicate_records_collapse_to_one_row(fresh_db, httpx_mock):
    meetings, sessions = snapshot("meetings", 2024), snapshot("sessions", 2024)
    shanghai = next(m for m in meetings if m["meeting_name"] == "Chinese Grand Prix")
    # A meeting twice in one answer: https://github.com/br-g/openf1/issues/58
    answer(httpx_mock, 2024, meetings + [shanghai], sessions + sessions[:3])

    result = load(fresh_db, [2024])

    assert table_counts(fresh_db) == {("meetings", 2024): 25, ("sessions", 2024): 123}
    assert rejects(fresh_db) == []
    assert result.requests == 4
    assert audit(fresh_db, result.run_id) == [
        ("meetings", 2024, "ok", 200, 1, 26, 25, 0),
        ("sessions", 2024, "ok", 200, 1, 126, 123, 0),
        *weekend_audit(2024),
    ]


def _drop(field):
    def broken(record):
        del record[field]

    return broken


def _set(field, value):
    def broken(record):
        record[field] = value

    return broken


BAD_RECORDS = {
    # case: (endpoint, how a real record is broken, expected reason)
    "meeting-without-meeting_key": (
        "meetings",
        _drop("meeting_key"),
        "meeting_key: Field required",
    ),
    "session-without-meeting_key": (
        "sessions",
        _drop("meeting_key"),
        "meeting_key: Field required",
    ),
    "circuit_key-as-text": (
        "meetings",
        _set("circuit_key", "63"),
        "circuit_key: Input should be a valid integer",
    ),
    "date_start-as-a-number": (
        "sessions",
        _set("date_start", 1709294400),
        "date_start: Value error, a timestamp must be an ISO 8601 string, not int",
    ),
    # Text that is not an ISO date and time is not guessed at either (a Unix time, a date).
    "date_start-as-unix-time-text": (
        "sessions",
        _set("date_start", "1709391600"),
        "date_start: Value error, a timestamp must be an ISO 8601 date and time such as"
        " 2024-03-02T15:00:00+00:00, not '1709391600'",
    ),
    # Beyond PostgreSQL's integer: a reject, not a failed fetch.
    "circuit_key-beyond-an-integer": (
        "meetings",
        _set("circuit_key", 2**31),
        "circuit_key: Value error, 2147483648 is out of range for an integer column",
    ),
    "date_start-a-date-alone": (
        "meetings",
        _set("date_start", "2024-03-02"),
        "date_start: Value error, a timestamp must be an ISO 8601 date and time such as"
        " 2024-03-02T15:00:00+00:00, not '2024-03-02'",
    ),
}


def orphans(endpoint: str, record: dict, span: tuple[int, int]) -> list[tuple]:
    """The rejects a rejected meeting or session brings: the sessions of a meeting that is not
    loaded, the results and grid rows (in the key range asked for) of a meeting or session that
    is not loaded, each with the reason naming it."""
    field = "meeting_key" if endpoint == "meetings" else "session_key"
    key = record[field]
    why = f"{field} {key} is not a loaded {endpoint.removesuffix('s')}"
    found = []
    if endpoint == "meetings":
        found += [("sessions", s) for s in snapshot("sessions", 2024) if s[field] == key]
    for weekend_endpoint in WEEKEND:
        found += [
            (weekend_endpoint, r) for r in weekend(weekend_endpoint, *span) if r[field] == key
        ]
    return [(e, 2024, why, r) for e, r in found]


@pytest.mark.parametrize("case", BAD_RECORDS)
def test_a_bad_record_is_rejected_and_the_good_ones_load(fresh_db, httpx_mock, case):
    endpoint, break_it, reason = BAD_RECORDS[case]
    records = {e: snapshot(e, 2024) for e in ("meetings", "sessions")}
    bad = records[endpoint][0]
    original = dict(bad)
    break_it(bad)
    answer(httpx_mock, 2024, records["meetings"], records["sessions"])

    result = load(fresh_db, [2024])

    # What the rejected meeting or session had is quarantined too, naming it (it loaded).
    cascade = orphans(endpoint, original, meeting_range(records["meetings"], 2024))
    expected = {("meetings", 2024): 25, ("sessions", 2024): 123}
    expected[(endpoint, 2024)] -= 1
    expected[("sessions", 2024)] -= sum(1 for e, *_ in cascade if e == "sessions")
    assert table_counts(fresh_db) == expected
    assert rejects(fresh_db) == [(endpoint, 2024, reason, bad), *cascade]
    assert result.requests == 4 and result.rows_rejected == 1 + len(cascade)


def test_unknown_fields_are_kept_in_the_record(fresh_db, httpx_mock):
    meetings = snapshot("meetings", 2024)
    meetings[3]["circuit_layout_version"] = 2  # a field OpenF1 may add tomorrow
    answer(httpx_mock, 2024, meetings)

    result = load(fresh_db, [2024])

    assert table_counts(fresh_db) == {("meetings", 2024): 25, ("sessions", 2024): 123}
    assert rejects(fresh_db) == [] and result.requests == 4
    assert records_of(fresh_db, "meetings", 2024)[meetings[3]["meeting_key"]] == meetings[3]


def test_legacy_and_current_record_shapes_both_load(fresh_db, httpx_mock):
    answer(httpx_mock, 2024)
    answer(httpx_mock, 2026, samples_2026("meetings"), samples_2026("sessions"))

    result = load(fresh_db, [2024, 2026])

    # The 2026 samples hold the Marina Bay and Suzuka sessions without their meetings: rejects.
    assert table_counts(fresh_db) == {
        ("meetings", 2024): 25,
        ("sessions", 2024): 123,
        ("meetings", 2026): 2,
        ("sessions", 2026): 3,
    }
    assert [r[:3] for r in rejects(fresh_db)] == [
        ("sessions", 2026, "meeting_key 1296 is not a loaded meeting"),
        ("sessions", 2026, "meeting_key 1281 is not a loaded meeting"),
    ]
    assert result.requests == 8
    shapes = query(
        fresh_db,
        "select year, count(date_end), count(is_cancelled), count(circuit_type),"
        " count(meeting_code) from raw.openf1_meetings group by year order by year",
    )
    assert shapes == [(2024, 0, 0, 0, 25), (2026, 2, 2, 2, 0)]
    miami = query(
        fresh_db,
        "select date_end, is_cancelled, circuit_type from raw.openf1_meetings"
        " where meeting_key = 1284",
    )
    assert miami == [(datetime(2026, 5, 3, 19, tzinfo=UTC), False, "Temporary - Street")]


# -- transactions, upserts, incremental loads ----------------------------------------------------
def test_a_killed_load_keeps_the_previous_data_and_the_next_run_completes_it(
    fresh_db, httpx_mock, monkeypatch
):
    answer(httpx_mock, 2024)
    load(fresh_db, [2024])
    first_sessions = records_of(fresh_db, "sessions", 2024)

    # OpenF1 republishes the season (every record gains a field); the load dies after the
    # meetings, half-way through writing the sessions.
    newer = {e: snapshot(e, 2024) for e in ("meetings", "sessions")}
    for records in newer.values():
        for record in records:
            record["republished"] = True
    answer(httpx_mock, 2024, newer["meetings"], newer["sessions"], weekend_too=False)
    import racemap.openf1.loader as loader

    real_execute_values = loader.execute_values

    def dies_half_way(cur, statement, rows, **kwargs):
        if "openf1_sessions" in statement:
            real_execute_values(cur, statement, rows[: len(rows) // 2], **kwargs)
            raise RuntimeError("killed")
        return real_execute_values(cur, statement, rows, **kwargs)

    monkeypatch.setattr(loader, "execute_values", dies_half_way)
    with pytest.raises(RuntimeError, match="killed"):
        load(fresh_db, [2024], refresh=True, run_id="killed")

    assert records_of(fresh_db, "sessions", 2024) == first_sessions  # not one row half-written
    assert all(r.get("republished") for r in records_of(fresh_db, "meetings", 2024).values())
    assert audit(fresh_db, "killed") == [
        ("meetings", 2024, "ok", 200, 1, 25, 25, 0),
        ("sessions", 2024, "failed", None, 1, 0, 0, 0),
    ]

    # The next run, without --refresh: the season's last fetch failed, so it is due again.
    monkeypatch.setattr(loader, "execute_values", real_execute_values)
    answer(httpx_mock, 2024, newer["meetings"], newer["sessions"], weekend_too=False)
    result = load(fresh_db, [2024])

    # The race-weekend data, fetched by the first run long after 2024 ended, stays settled.
    assert result.requests == 2
    assert all(r.get("republished") for r in records_of(fresh_db, "sessions", 2024).values())
    assert table_counts(fresh_db) == {("meetings", 2024): 25, ("sessions", 2024): 123}


def test_an_interrupted_fetch_is_audited_and_fetched_again(fresh_db, httpx_mock):
    """Ctrl-C during a request (KeyboardInterrupt, or the Interrupted of a signal) left no row in
    raw.openf1_loads: a failed one now says so, and the next run fetches the season."""

    def interrupted(request):
        raise Interrupted("interrupted during load")

    httpx_mock.add_callback(interrupted, url=url("meetings", 2024))
    with pytest.raises(Interrupted):
        load(fresh_db, [2024], run_id="interrupted")
    assert query(
        fresh_db,
        "select endpoint, season, status, requests, error from raw.openf1_loads"
        " where run_id = 'interrupted'",
    ) == [
        (
            "meetings",
            2024,
            "failed",
            1,
            "interrupted (Ctrl-C or SIGTERM): the next run fetches it again",
        )
    ]
    answer(httpx_mock, 2024)
    assert load(fresh_db, [2024]).requests == 4


def test_rerunning_loads_nothing_twice(fresh_db, httpx_mock):
    answer(httpx_mock, 2024)
    load(fresh_db, [2024])
    stamps = dict(query(fresh_db, "select session_key, loaded_at from raw.openf1_sessions"))

    # São Paulo 2024: the race start was brought forward 90 minutes; OpenF1 updates the record.
    sessions = snapshot("sessions", 2024)
    race = next(s for s in sessions if s["session_key"] == 9636)
    race["date_start"] = "2024-11-03T13:30:00+00:00"
    answer(httpx_mock, 2024, sessions=sessions)
    result = load(fresh_db, [2024], refresh=True)

    assert table_counts(fresh_db) == {("meetings", 2024): 25, ("sessions", 2024): 123}
    assert result.requests == 4 and rejects(fresh_db) == []
    now = dict(query(fresh_db, "select session_key, loaded_at from raw.openf1_sessions"))
    assert [key for key in now if now[key] != stamps[key]] == [9636]  # only the changed row
    assert query(
        fresh_db, "select date_start from raw.openf1_sessions where session_key = 9636"
    ) == [(datetime(2024, 11, 3, 13, 30, tzinfo=UTC),)]


def test_settled_seasons_are_not_fetched_again_unless_refresh(fresh_db, httpx_mock):
    answer(httpx_mock, 2023)
    answer(httpx_mock, 2024)
    assert load(fresh_db, [2023, 2024]).requests == 8

    second = load(fresh_db, [2023, 2024])
    assert second.requests == 0
    assert {x.status for x in second.loads} == {"skipped"} and len(second.loads) == 8

    answer(httpx_mock, 2023)
    answer(httpx_mock, 2024)
    assert load(fresh_db, [2023, 2024], refresh=True).requests == 8
    assert table_counts(fresh_db) == {
        ("meetings", 2023): 23,
        ("sessions", 2023): 113,
        ("meetings", 2024): 25,
        ("sessions", 2024): 123,
    }


def test_a_load_with_rejects_does_not_settle_its_season(fresh_db, httpx_mock):
    """2024 is over: a clean first load settles it. A first load with a reject (meeting_key
    "1229") did too, and every later run asked for nothing and failed the same way until
    --refresh. Now the season is fetched again until a load of it has no reject."""
    meetings = snapshot("meetings", 2024)
    meetings[1]["meeting_key"] = str(meetings[1]["meeting_key"])
    answer(httpx_mock, 2024, meetings)
    first = load(fresh_db, [2024])
    assert first.rows_rejected > 1  # the meeting, and its sessions and results

    answer(httpx_mock, 2024)
    second = load(fresh_db, [2024])
    assert second.requests == 4 and second.rows_rejected == 0
    assert table_counts(fresh_db) == {("meetings", 2024): 25, ("sessions", 2024): 123}

    assert load(fresh_db, [2024]).requests == 0  # settled now


def test_race_weekend_data_with_a_reject_is_fetched_again(fresh_db, httpx_mock):
    grid = weekend("starting_grid", 1228, 1252)
    grid[7]["position"] = "1"
    answer(httpx_mock, 2024, grid=grid)
    assert load(fresh_db, [2024]).rows_rejected == 1

    httpx_mock.add_response(
        url=weekend_url("starting_grid", 1228, 1252), json=weekend("starting_grid", 1228, 1252)
    )
    again = load(fresh_db, [2024])
    assert [x.status for x in again.loads] == ["skipped", "skipped", "skipped", "ok"]
    assert again.requests == 1 and again.rows_rejected == 0

    assert load(fresh_db, [2024]).requests == 0


def test_a_season_loaded_while_it_ran_is_fetched_again(fresh_db, httpx_mock):
    """Legacy OpenF1 lists only past sessions: a load from November 2025 lacks the last races."""
    answer(httpx_mock, 2025)
    load(fresh_db, [2025])
    query(fresh_db, "update raw.openf1_loads set started_at = '2025-11-20' returning 1")

    answer(httpx_mock, 2025)
    assert load(fresh_db, [2025]).requests == 4


def test_the_offline_snapshot_does_not_settle_a_season(fresh_db, httpx_mock):
    load_openf1(fresh_db, [2024], offline=True)
    answer(httpx_mock, 2024)
    assert load(fresh_db, [2024]).requests == 4


def test_the_audited_url_carries_no_password(fresh_db, httpx_mock):
    secret_base = "https://racemap:s3cret@openf1.test/v1"
    for endpoint in ("meetings", "sessions"):
        httpx_mock.add_response(
            url=re.compile(rf".*/v1/{endpoint}\?year=2024$"), json=snapshot(endpoint, 2024)
        )
    for endpoint in WEEKEND:
        httpx_mock.add_response(
            url=re.compile(rf".*/v1/{endpoint}\?meeting_key.*$"), json=weekend(endpoint, 1228, 1252)
        )
    result = load(fresh_db, [2024], c=client(secret_base))
    sent = httpx_mock.get_requests()[0]
    assert sent.headers["authorization"].startswith("Basic ")  # the password goes as auth
    urls = [u for (u,) in query(fresh_db, "select url from raw.openf1_loads order by load_id")]
    assert urls == [
        url("meetings", 2024),
        url("sessions", 2024),
        weekend_url("session_result", 1228, 1252),
        weekend_url("starting_grid", 1228, 1252),
    ]
    assert result.requests == 4


# -- the local OpenF1 server -------------------------------------------------------------------
def test_three_seasons_from_a_local_server_take_twelve_requests_then_none(fresh_db):
    with serve() as server:
        first = load(fresh_db, [2023, 2024, 2025], c=client(server.base_url))
        assert server.requests == 12 == first.requests  # four a season, never one per race
        assert load_counts(fresh_db, first.run_id)["requests"] == 12  # summary.json's figure
        server.reset()

        second = load(fresh_db, [2023, 2024, 2025], c=client(server.base_url))
        assert server.requests == 0 == second.requests

    counts = table_counts(fresh_db)
    assert sum(n for (endpoint, _), n in counts.items() if endpoint == "meetings") == 73
    assert sum(n for (endpoint, _), n in counts.items() if endpoint == "sessions") == 359
    assert weekend_counts(fresh_db) == {
        (endpoint, season): n
        for season, rows in WEEKEND_ROWS.items()
        for endpoint, n in rows.items()
    }
    assert rejects(fresh_db) == []


def test_the_current_season_is_always_fetched_again(fresh_db):
    with serve(records_dir=[SNAPSHOT_DIR, SAMPLES_2026]) as server:
        first = load(fresh_db, [2025, 2026], c=client(server.base_url))
        assert server.requests == 8 == first.requests
        server.reset()

        second = load(fresh_db, [2025, 2026], c=client(server.base_url))
        assert server.requests == 4 == second.requests
        assert [(x[0], x[1]) for x in audit(fresh_db, second.run_id)] == [
            ("meetings", 2026),
            ("sessions", 2026),
            ("session_result", 2026),
            ("starting_grid", 2026),
        ]
        assert load_counts(fresh_db, second.run_id)["requests"] == 4
    assert table_counts(fresh_db)[("sessions", 2026)] == 3  # Marina Bay, Suzuka: no meeting


# -- progress ----------------------------------------------------------------------------------
def test_the_progress_bar_is_quiet_in_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with _progress(6) as bar:
        assert bar.disable


LOAD_2024 = (
    "import sys\n"
    "from racemap.db import parse_database_url\n"
    "from racemap.openf1.loader import load_openf1\n"
    "load_openf1(parse_database_url(sys.argv[1]), [2024], offline=True)\n"
)


def _stderr_of_a_load(db, terminal: bool) -> str:
    """stderr of a load in a process of its own, on a pseudo-terminal or a pipe."""
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    command = [sys.executable, "-c", LOAD_2024, db.url]
    if not terminal:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stderr
    leader, follower = pty.openpty()
    # A terminal has a size (a new pseudo-terminal has 0 columns, where tqdm draws nothing).
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    with subprocess.Popen(command, env=env, stderr=follower, stdout=subprocess.DEVNULL) as proc:
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal's other end closed: the process is done
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(120) == 0, b"".join(chunks)
    os.close(leader)
    return b"".join(chunks).decode("utf-8", "replace")


def test_the_progress_bar_shows_on_a_terminal_and_not_when_piped(fresh_db):
    shown = _stderr_of_a_load(fresh_db, terminal=True)
    assert "OpenF1" in shown and "fetch" in shown and "starting_grid 2024" in shown
    assert "OpenF1" not in _stderr_of_a_load(fresh_db, terminal=False)


def test_racemap_run_loads_once_and_its_notebook_records_that_load(mapped_demo):
    """The load ran in racemap's process; the notebook, run with load=False, showed its rows of
    raw.openf1_loads and loaded nothing again."""
    db, result, reports = mapped_demo
    audit_rows = query(
        db,
        "select endpoint, season, rows_loaded from raw.openf1_loads where run_id = %s"
        " order by load_id",
        (result.run_id,),
    )
    seasons = (2023, 2024, 2025)  # the schedule of every season first, then the weekends
    assert [(e, s) for e, s, _n in audit_rows] == [
        (e, s) for s in seasons for e in ("meetings", "sessions")
    ] + [(e, s) for s in seasons for e in WEEKEND]
    assert query(db, "select count(distinct run_id) from raw.openf1_loads") == [(1,)]
    notebook = json.loads((reports / "notebooks" / "load_openf1.ipynb").read_text())
    parameters = notebook["metadata"]["papermill"]["parameters"]
    assert parameters["load"] is False and parameters["run_id"] == result.run_id
    assert not {"DATABASE_URL", "OPENF1_USERNAME", "OPENF1_PASSWORD"} & set(parameters)
    printed = "".join(
        "".join(output.get("text", ""))
        for cell in notebook["cells"]
        for output in cell.get("outputs", [])
    )
    loaded = sum(n for _e, _s, n in audit_rows)
    assert f"run {result.run_id}: {loaded} rows loaded, 0 rejected, 0 marked removed" in printed
    assert loaded == 73 + 359 + 7063 + 1734 == result.summary["openf1"]["rows_loaded"]


# -- race-weekend data: session_result and starting_grid ---------------------------------------
def result_row(db, session_key: int, driver_number: int) -> tuple:
    return query(
        db,
        "select position, number_of_laps, points, dnf, dns, dsq, duration, gap_to_leader,"
        " meeting_key, source from raw.openf1_session_results"
        " where session_key = %s and driver_number = %s",
        (session_key, driver_number),
    )[0]


def test_race_weekend_rows_load_with_their_quirks(fresh_db, httpx_mock):
    """2023 Bahrain: qualifying 7768 (array durations holding nulls, no points), race 7953
    (a lapped car's "+1 LAP", an unclassified car, the winner's gap 0)."""
    answer(httpx_mock, 2023)

    result = load(fresh_db, [2023])

    assert rejects(fresh_db) == []
    assert weekend_counts(fresh_db) == {
        ("session_result", 2023): 2171,
        ("starting_grid", 2023): 555,
    }
    assert [(x.endpoint, x.rows_loaded) for x in result.loads][2:] == [
        ("session_result", 2171),
        ("starting_grid", 555),
    ]
    assert result_row(fresh_db, 7768, 27) == (
        10, 17, None, True, False, False, [91.204, 90.809, None], [0.211, 0.527, None], 1141,
        "live",
    )  # fmt: skip
    assert result_row(fresh_db, 7953, 2)[2:8] == (0, False, False, False, None, "+1 LAP")
    assert result_row(fresh_db, 7953, 31)[:4] == (None, 41, 0, True)
    assert result_row(fresh_db, 7953, 1)[6:8] == (5636.736, 0)
    # The grid hangs off the qualifying session (https://github.com/br-g/openf1/issues/356).
    assert query(
        fresh_db,
        "select g.position, g.lap_duration, s.session_name from raw.openf1_starting_grid g"
        " join raw.openf1_sessions s using (session_key)"
        " where g.session_key = 7768 and g.driver_number in (1, 27) order by g.position",
    ) == [(1, 89.708, "Qualifying"), (10, None, "Qualifying")]
    record = query(
        fresh_db,
        "select record from raw.openf1_session_results where session_key = 7953"
        " and driver_number = 1",
    )[0][0]
    assert "points" in record and record == next(
        r
        for r in weekend("session_result", 1141, 1141)
        if (r["session_key"], r["driver_number"]) == (7953, 1)
    )


BAD_WEEKEND_RECORDS = {
    "points-as-text": ("session_result", _set("points", "25"), "points: Value error, must be a"),
    "duration-as-an-object": (
        "session_result",
        _set("duration", {"q1": 91.2}),
        "duration: Value error, must be a number, null, or a list of them",
    ),
    "gap-as-a-boolean": (
        "session_result",
        _set("gap_to_leader", True),
        "gap_to_leader: Value error, must be a number, a string, null, or a list of them",
    ),
    "result-without-driver_number": (
        "session_result",
        _drop("driver_number"),
        "driver_number: Field required",
    ),
    "grid-position-as-text": (
        "starting_grid",
        _set("position", "1"),
        "position: Input should be a valid integer",
    ),
}


@pytest.mark.parametrize("case", BAD_WEEKEND_RECORDS)
def test_a_bad_race_weekend_record_is_rejected_and_the_others_load(fresh_db, httpx_mock, case):
    endpoint, break_it, reason = BAD_WEEKEND_RECORDS[case]
    body = weekend(endpoint, 1228, 1252)
    bad = body[100]
    break_it(bad)
    answer(httpx_mock, 2024, **{"results" if endpoint == "session_result" else "grid": body})

    result = load(fresh_db, [2024])

    expected = {("session_result", 2024): 2441, ("starting_grid", 2024): 599}
    expected[(endpoint, 2024)] -= 1
    assert weekend_counts(fresh_db) == expected
    [(where, season, why, payload)] = rejects(fresh_db)
    assert (where, season, payload) == (endpoint, 2024, bad) and why.startswith(reason)
    assert result.requests == 4 and result.rows_rejected == 1


def test_nan_infinity_and_nul_are_rejects_not_a_failed_fetch(fresh_db, httpx_mock):
    """Python's json reads NaN and Infinity, and a NUL in a string, none of which PostgreSQL
    stores (numeric, jsonb, text): each such record is a reject with its reason, in a typed field
    or in one kept only in ``record``, and its payload is quarantined with them as text; the
    rest of the season loads. They failed the whole fetch with a multi-line database error."""
    meetings = snapshot("meetings", 2024)
    # Neither the first meeting nor the last: the results' key range stays 1228-1252.
    meetings[3]["meeting_name"] = "Grand\x00Prix"
    meetings[4]["circuit_layout"] = {"turns": [float("-inf")], "name\x00": "x"}  # unknown field
    results = weekend("session_result", 1228, 1252)
    results[0]["points"] = float("nan")
    results[1]["gap_to_leader"] = [1.5, float("inf"), None]
    grid = weekend("starting_grid", 1228, 1252)
    grid[0]["lap_duration"] = float("inf")
    # As a server writing Python's json sends them (pytest-httpx's json= refuses NaN).
    bodies = {"meetings": meetings, "sessions": snapshot("sessions", 2024)}
    for endpoint, body in bodies.items():
        httpx_mock.add_response(url=url(endpoint, 2024), content=json.dumps(body).encode())
    for endpoint, body in (("session_result", results), ("starting_grid", grid)):
        httpx_mock.add_response(
            url=weekend_url(endpoint, 1228, 1252), content=json.dumps(body).encode()
        )

    result = load(fresh_db, [2024])

    unstorable = [r for r in rejects(fresh_db) if "NUL" in r[2] or "finite" in r[2]]
    assert unstorable == [
        (
            "meetings",
            2024,
            "meeting_name: must not contain a NUL character (\\u0000)",
            {**meetings[3], "meeting_name": "Grand\\u0000Prix"},
        ),
        (
            "meetings",
            2024,
            "circuit_layout.turns.0: must be a finite number, not -Infinity;"
            " circuit_layout: a field name must not contain a NUL character (\\u0000)",
            {**meetings[4], "circuit_layout": {"turns": ["-Infinity"], "name\\u0000": "x"}},
        ),
        (
            "session_result",
            2024,
            "points: must be a finite number, not NaN",
            {**results[0], "points": "NaN"},
        ),
        (
            "session_result",
            2024,
            "gap_to_leader.1: must be a finite number, not Infinity",
            {**results[1], "gap_to_leader": [1.5, "Infinity", None]},
        ),
        (
            "starting_grid",
            2024,
            "lap_duration: must be a finite number, not Infinity",
            {**grid[0], "lap_duration": "Infinity"},
        ),
    ]
    assert table_counts(fresh_db)[("meetings", 2024)] == 23
    assert 0 < weekend_counts(fresh_db)[("session_result", 2024)] <= 2441 - 2
    assert 0 < weekend_counts(fresh_db)[("starting_grid", 2024)] <= 599 - 1
    assert [x.status for x in result.loads] == ["ok"] * 4
    assert query(fresh_db, "select count(*) from raw.openf1_loads where error is not null") == [
        (0,)
    ]


def test_a_failed_write_is_audited_on_one_line(fresh_db, httpx_mock, monkeypatch):
    """PostgreSQL's errors run on for lines (LINE 1: ..., DETAIL, CONTEXT): the audit keeps the
    first, as the command line does."""
    import racemap.openf1.loader as loader

    def breaks(cur, statement, rows, **kwargs):
        cur.execute("select 'NaN'::jsonb")

    monkeypatch.setattr(loader, "execute_values", breaks)
    httpx_mock.add_response(url=url("meetings", 2024), json=snapshot("meetings", 2024))
    with pytest.raises(Exception, match="invalid input syntax for type json"):
        load(fresh_db, [2024], run_id="broken")
    [(error,)] = query(fresh_db, "select error from raw.openf1_loads where run_id = 'broken'")
    assert error == "InvalidTextRepresentation: invalid input syntax for type json"


def test_only_the_seasons_own_meetings_load_and_an_unknown_meeting_is_rejected(
    fresh_db, httpx_mock
):
    """Meeting keys are not chronological: a key range may reach another season's meeting."""
    answer(httpx_mock, 2023)
    load(fresh_db, [2023])
    results = weekend("session_result", 1228, 1252)
    other_season = weekend("session_result", 1141, 1141)[:3]  # 2023 Bahrain, already loaded
    unknown = {**results[0], "meeting_key": 1300}
    no_meeting = {k: v for k, v in results[1].items() if k != "meeting_key"}
    answer(httpx_mock, 2024, results=results[2:] + other_season + [unknown, no_meeting])

    result = load(fresh_db, [2024])

    assert [r[:3] for r in rejects(fresh_db)] == [
        ("session_result", 2024, "meeting_key 1300 is not a loaded meeting")
    ]
    assert weekend_counts(fresh_db)[("session_result", 2024)] == 2441 - 2 + 1
    # The row without meeting_key found its meeting through its session.
    assert query(
        fresh_db,
        "select meeting_key from raw.openf1_session_results where session_key = %s"
        " and driver_number = %s",
        (no_meeting["session_key"], no_meeting["driver_number"]),
    ) == [(results[1]["meeting_key"],)]
    assert audit(fresh_db, result.run_id)[2] == (
        "session_result", 2024, "ok", 200, 1, 2441 - 2 + 3 + 2, 2441 - 1, 1,
    )  # fmt: skip


def test_a_session_or_result_whose_meeting_or_session_is_missing_is_a_reject(fresh_db, httpx_mock):
    """The meetings answer lacks a meeting and the sessions answer a session: their sessions and
    results are rejects naming what is missing, the rest of the season loads. They loaded, and
    the raw check (every session's meeting exists) and dbt's relationships test failed the run."""
    meetings, sessions = snapshot("meetings", 2024), snapshot("sessions", 2024)
    gone = meetings.pop(5)["meeting_key"]
    (race,) = [s for s in sessions if s["meeting_key"] == meetings[6]["meeting_key"]
               and s["session_name"] == "Race"]  # fmt: skip
    sessions.remove(race)
    answer(httpx_mock, 2024, meetings, sessions)

    result = load(fresh_db, [2024])

    orphans = [s for s in sessions if s["meeting_key"] == gone]
    results = weekend("session_result", 1228, 1252)
    reasons = {}
    for endpoint, _season, reason, _payload in rejects(fresh_db):
        reasons[(endpoint, reason)] = reasons.get((endpoint, reason), 0) + 1
    assert reasons == {
        ("sessions", f"meeting_key {gone} is not a loaded meeting"): len(orphans),
        ("session_result", f"meeting_key {gone} is not a loaded meeting"): sum(
            1 for r in results if r["meeting_key"] == gone
        ),
        ("session_result", f"session_key {race['session_key']} is not a loaded session"): sum(
            1 for r in results if r["session_key"] == race["session_key"]
        ),
        ("starting_grid", f"meeting_key {gone} is not a loaded meeting"): sum(
            1 for r in weekend("starting_grid", 1228, 1252) if r["meeting_key"] == gone
        ),
    }
    assert table_counts(fresh_db) == {
        ("meetings", 2024): 24,
        ("sessions", 2024): 123 - 1 - len(orphans),
    }
    assert query(
        fresh_db,
        "select count(*) from raw.openf1_sessions s where not exists"
        " (select 1 from raw.openf1_meetings m where m.meeting_key = s.meeting_key)"
        " union all select count(*) from raw.openf1_session_results r where not exists"
        " (select 1 from raw.openf1_sessions s where s.session_key = r.session_key)",
    ) == [(0,), (0,)]
    assert [x.status for x in result.loads] == ["ok"] * 4


def test_the_sessions_and_results_of_a_meeting_openf1_no_longer_lists_leave_with_it(
    fresh_db, httpx_mock
):
    """The meetings answer drops a meeting loaded before while the sessions and results answers
    still list its rows: those rows are rejects naming the meeting and are marked removed with
    it. They stayed current (a rejected record with a key counted as listed), so dbt's
    relationships test (every session's meeting is one OpenF1 lists) failed every build."""
    meetings, sessions = snapshot("meetings", 2024), snapshot("sessions", 2024)
    answer(httpx_mock, 2024)
    load(fresh_db, [2024])
    gone = meetings.pop(5)["meeting_key"]
    answer(httpx_mock, 2024, meetings, sessions)

    second = load(fresh_db, [2024], refresh=True, run_id="second")

    orphans = sum(1 for s in sessions if s["meeting_key"] == gone)
    orphan_results = sum(
        1 for r in weekend("session_result", 1228, 1252) if r["meeting_key"] == gone
    )
    orphan_grid = sum(1 for r in weekend("starting_grid", 1228, 1252) if r["meeting_key"] == gone)
    assert removal_audit(fresh_db, "second") == [
        ("meetings", "ok", 24, 24, 0, 1, None),
        ("sessions", "ok", 123, 123 - orphans, orphans, orphans, None),
        ("session_result", "ok", 2441, 2441 - orphan_results, orphan_results, orphan_results,
         None),
        ("starting_grid", "ok", 599, 599 - orphan_grid, orphan_grid, orphan_grid, None),
    ]  # fmt: skip
    assert {(x.endpoint, x.rows_removed) for x in second.loads} == {
        ("meetings", 1),
        ("sessions", orphans),
        ("session_result", orphan_results),
        ("starting_grid", orphan_grid),
    }
    # What the staging models read (removed_at is null) holds together: dbt's relationships.
    assert query(
        fresh_db,
        "select count(*) from raw.openf1_sessions s where s.removed_at is null and not exists"
        " (select 1 from raw.openf1_meetings m where m.meeting_key = s.meeting_key"
        " and m.removed_at is null)"
        " union all select count(*) from raw.openf1_session_results r"
        " where r.removed_at is null and not exists (select 1 from raw.openf1_sessions s"
        " where s.session_key = r.session_key and s.removed_at is null)",
    ) == [(0,), (0,)]

    # Listed again: back, with its sessions and results.
    answer(httpx_mock, 2024)
    load(fresh_db, [2024], refresh=True)
    assert query(
        fresh_db,
        "select (select count(*) from raw.openf1_meetings where removed_at is not null)"
        " + (select count(*) from raw.openf1_sessions where removed_at is not null)"
        " + (select count(*) from raw.openf1_session_results where removed_at is not null)",
    ) == [(0,)]


def test_race_weekend_data_is_fetched_again_within_the_settle_window(
    fresh_db, httpx_mock, monkeypatch
):
    """2025 ended on 2025-12-07. Fetched now (2026), its results are past a 14-day window, so
    settled; a 400-day window (to 2027-01-11) is still open, so they are fetched again, alone:
    the schedule is settled."""
    answer(httpx_mock, 2025)
    assert load(fresh_db, [2025]).requests == 4
    assert load(fresh_db, [2025]).requests == 0

    span = meeting_range(snapshot("meetings", 2025), 2025)
    for endpoint in WEEKEND:
        httpx_mock.add_response(url=weekend_url(endpoint, *span), json=weekend(endpoint, *span))
    monkeypatch.setenv("OPENF1_SETTLE_DAYS", "400")
    again = load(fresh_db, [2025])
    assert again.requests == 2
    assert [x.status for x in again.loads] == ["skipped", "skipped", "ok", "ok"]
    assert weekend_counts(fresh_db) == {
        ("session_result", 2025): 2451,
        ("starting_grid", 2025): 580,
    }

    assert load(fresh_db, [2025], settle_days=14).requests == 0


def test_a_bad_settle_window_is_one_line(fresh_db, monkeypatch):
    monkeypatch.setenv("OPENF1_SETTLE_DAYS", "two weeks")
    with pytest.raises(RacemapError, match=r"^OPENF1_SETTLE_DAYS='two weeks': give a number"):
        load_openf1(fresh_db, [2024], offline=True)


def test_offline_loads_the_race_weekend_data_of_the_snapshot(fresh_db):
    result = load_openf1(fresh_db, [2023, 2024, 2025], offline=True)

    assert weekend_counts(fresh_db) == {
        (endpoint, season): n
        for season, rows in WEEKEND_ROWS.items()
        for endpoint, n in rows.items()
    }
    assert result.requests == 0 and rejects(fresh_db) == []
    assert query(
        fresh_db,
        "select distinct source from raw.openf1_session_results"
        " union select distinct source from raw.openf1_starting_grid",
    ) == [("snapshot",)]


# -- reconciling: removed records, live before snapshot ----------------------------------------
def provenance(db, table: str, key: str) -> dict:
    rows = query(db, f"select {key}, source, fetched_at, removed_at from raw.openf1_{table}")
    return {k: rest for k, *rest in rows}


def test_a_meeting_openf1_no_longer_lists_is_marked_removed_then_back_when_listed(
    fresh_db, httpx_mock
):
    """The 2024 Chinese GP leaves the answer, with its
    sessions and results, as a called-off meeting would; the next answer lists it again."""
    meetings, sessions = snapshot("meetings", 2024), snapshot("sessions", 2024)
    china = next(m["meeting_key"] for m in meetings if m["meeting_name"] == "Chinese Grand Prix")
    answer(httpx_mock, 2024)
    load(fresh_db, [2024])

    answer(
        httpx_mock,
        2024,
        [m for m in meetings if m["meeting_key"] != china],
        [s for s in sessions if s["meeting_key"] != china],
        results=[r for r in weekend("session_result", 1228, 1252) if r["meeting_key"] != china],
    )
    second = load(fresh_db, [2024], refresh=True, run_id="second")

    removed = {
        table: query(
            fresh_db,
            f"select count(*), count(*) filter (where meeting_key = {china}),"
            f" count(distinct source) from raw.openf1_{table} where removed_at is not null",
        )[0]
        for table in ("meetings", "sessions", "session_results", "starting_grid")
    }
    grid_rows = query(
        fresh_db, f"select count(*) from raw.openf1_starting_grid where meeting_key = {china}"
    )[0][0]
    sprint_weekend_sessions = sum(1 for s in sessions if s["meeting_key"] == china)
    results_rows = sum(
        1 for r in weekend("session_result", 1228, 1252) if r["meeting_key"] == china
    )
    assert removed == {
        "meetings": (1, 1, 1),
        "sessions": (sprint_weekend_sessions, sprint_weekend_sessions, 1),
        "session_results": (results_rows, results_rows, 1),
        # Still in the grid answer (the whole season's), but its meeting is gone: it leaves
        # with it (a rejected orphan).
        "starting_grid": (grid_rows, grid_rows, 1),
    }
    assert grid_rows > 0
    assert table_counts(fresh_db) == {("meetings", 2024): 25, ("sessions", 2024): 123}  # kept
    assert query(
        fresh_db,
        "select endpoint, rows_loaded, rows_removed from raw.openf1_loads where run_id = 'second'"
        " order by load_id",
    ) == [
        ("meetings", 24, 1),
        ("sessions", 123 - sprint_weekend_sessions, sprint_weekend_sessions),
        ("session_result", 2441 - results_rows, results_rows),
        ("starting_grid", 599 - grid_rows, grid_rows),
    ]
    assert [x.rows_removed for x in second.loads] == [
        1,
        sprint_weekend_sessions,
        results_rows,
        grid_rows,
    ]
    stamps = dict(query(fresh_db, "select meeting_key, loaded_at from raw.openf1_meetings"))

    answer(httpx_mock, 2024)
    load(fresh_db, [2024], refresh=True)
    # Listed again, as it was: back in the data, so its loaded_at moves (a race page shows it).
    now = dict(query(fresh_db, "select meeting_key, loaded_at from raw.openf1_meetings"))
    assert [key for key in now if now[key] != stamps[key]] == [china]
    assert query(
        fresh_db,
        "select count(*) from raw.openf1_meetings where removed_at is not null"
        " union all select count(*) from raw.openf1_sessions where removed_at is not null"
        " union all select count(*) from raw.openf1_session_results where removed_at is not null"
        " union all select count(*) from raw.openf1_starting_grid where removed_at is not null",
    ) == [(0,), (0,), (0,), (0,)]


def removal_audit(db, run_id) -> list[tuple]:
    return query(
        db,
        "select endpoint, status, rows_received, rows_loaded, rows_rejected, rows_removed,"
        " removals_skipped from raw.openf1_loads where run_id = %s order by load_id",
        (run_id,),
    )


def weekend_of_any_range(httpx_mock) -> None:
    """The season's results and grid, whatever meeting-key range the loader asks for."""
    for endpoint in WEEKEND:
        httpx_mock.add_response(
            url=re.compile(rf".*/v1/{endpoint}\?meeting_key.*$"), json=weekend(endpoint, 1228, 1252)
        )


def removed_meetings(db) -> list[int]:
    return [k for (k,) in query(db, "select meeting_key from raw.openf1_meetings"
                                " where removed_at is not null order by 1")]  # fmt: skip


def test_a_key_sent_as_text_is_rejected_and_its_stored_row_is_not_removed(fresh_db, httpx_mock):
    """meeting_key "1229": the record is a reject (a wrong type), but OpenF1 still lists meeting
    1229, so the stored one stays current. It was marked removed (and every meeting, when every
    key came as text), and dbt's relationships tests failed."""
    answer(httpx_mock, 2024)
    load(fresh_db, [2024])

    meetings = snapshot("meetings", 2024)
    (bahrain,) = [m for m in meetings if m["meeting_key"] == 1229]
    bahrain["meeting_key"] = "1229"
    answer(httpx_mock, 2024, meetings, weekend_too=False)
    weekend_of_any_range(httpx_mock)
    load(fresh_db, [2024], refresh=True, run_id="one-as-text")
    assert removed_meetings(fresh_db) == []
    assert removal_audit(fresh_db, "one-as-text")[0] == ("meetings", "ok", 25, 24, 1, 0, None)

    every = [{**m, "meeting_key": str(m["meeting_key"])} for m in snapshot("meetings", 2024)]
    answer(httpx_mock, 2024, every, weekend_too=False)
    weekend_of_any_range(httpx_mock)
    load(fresh_db, [2024], refresh=True, run_id="all-as-text")
    assert removed_meetings(fresh_db) == []
    assert removal_audit(fresh_db, "all-as-text")[0] == ("meetings", "ok", 25, 0, 25, 0, None)
    assert query(fresh_db, "select count(*) from raw.openf1_rejects") == [(26,)]


@pytest.mark.parametrize(
    "unreadable",
    [_drop("meeting_key"), _set("meeting_key", "Bahrain"), _set("meeting_key", 1229.5)],
    ids=["missing", "not-a-number", "a-fraction"],
)
def test_an_answer_with_a_key_it_cannot_read_removes_nothing(fresh_db, httpx_mock, unreadable):
    """A record whose key cannot be read might be any meeting: a meeting missing from that
    answer is not taken as gone. The audit row says why nothing was removed."""
    answer(httpx_mock, 2024)
    load(fresh_db, [2024])
    meetings = snapshot("meetings", 2024)
    dropped = meetings.pop()["meeting_key"]  # the last meeting is not in the answer ...
    unreadable(meetings[1])  # ... and one record's key cannot be read
    answer(httpx_mock, 2024, meetings, weekend_too=False)
    weekend_of_any_range(httpx_mock)

    result = load(fresh_db, [2024], refresh=True, run_id="unreadable")

    assert removed_meetings(fresh_db) == []
    assert removal_audit(fresh_db, "unreadable")[0] == (
        "meetings", "ok", 24, 23, 1, 0,
        "removed nothing: 1 record whose key could not be read (raw.openf1_rejects)",
    )  # fmt: skip
    assert result.loads[0].removals_skipped and result.loads[0].rows_removed == 0
    # What the load notebook shows of the run (load_audit) says it too.
    assert load_audit(fresh_db, "unreadable")[0]["removals_skipped"].startswith("removed nothing")

    answer(httpx_mock, 2024, snapshot("meetings", 2024)[:-1], weekend_too=False)
    weekend_of_any_range(httpx_mock)
    load(fresh_db, [2024], refresh=True)  # an answer it can read: the meeting is gone
    assert removed_meetings(fresh_db) == [dropped]


def test_an_empty_answer_removes_nothing(fresh_db, httpx_mock):
    answer(httpx_mock, 2024)
    load(fresh_db, [2024])
    for endpoint in ("meetings", "sessions"):
        httpx_mock.add_response(
            url=url(endpoint, 2024), status_code=404, content=fixture("no_results_404.json")
        )
    for endpoint in WEEKEND:
        httpx_mock.add_response(url=weekend_url(endpoint, 1228, 1252), json=[])

    result = load(fresh_db, [2024], refresh=True)

    assert [x.rows_removed for x in result.loads] == [0, 0, 0, 0]
    assert query(
        fresh_db,
        "select count(*) from raw.openf1_meetings where removed_at is null"
        " union all select count(*) from raw.openf1_session_results where removed_at is null",
    ) == [(25,), (2441,)]


def test_offline_after_a_live_load_leaves_the_live_records_untouched(fresh_db, httpx_mock):
    """Live 2024 says the São Paulo race started at 13:30 (it was brought forward); the
    snapshot says 15:00. --offline afterwards keeps the live record, its source and its fetch
    time, and loads only what live never gave (2023)."""
    sessions = snapshot("sessions", 2024)
    race = next(s for s in sessions if s["session_key"] == 9636)
    race["date_start"] = "2024-11-03T13:30:00+00:00"
    answer(httpx_mock, 2024, sessions=sessions)
    load(fresh_db, [2024])
    live = {
        t: provenance(fresh_db, t, k)
        for t, k in (("meetings", "meeting_key"), ("sessions", "session_key"))
    }
    live_results = query(
        fresh_db, "select count(*), min(fetched_at) from raw.openf1_session_results"
    )

    offline = load_openf1(fresh_db, [2023, 2024], offline=True, run_id="offline")

    for table, key in (("meetings", "meeting_key"), ("sessions", "session_key")):
        now = provenance(fresh_db, table, key)
        assert {k: now[k] for k in live[table]} == live[table]
        assert {v[0] for k, v in now.items() if k not in live[table]} == {"snapshot"}
    assert query(
        fresh_db, "select date_start, record from raw.openf1_sessions where session_key = 9636"
    ) == [(datetime(2024, 11, 3, 13, 30, tzinfo=UTC), race)]
    assert (
        query(
            fresh_db,
            "select count(*), min(r.fetched_at) from raw.openf1_session_results r"
            " join raw.openf1_meetings m using (meeting_key) where m.year = 2024",
        )
        == live_results
    )
    assert query(
        fresh_db,
        "select endpoint, season, rows_received, rows_loaded, rows_removed from raw.openf1_loads"
        " where run_id = 'offline' and season = 2024 order by load_id",
    ) == [
        ("meetings", 2024, 25, 0, 0),
        ("sessions", 2024, 123, 0, 0),
        ("session_result", 2024, 2441, 0, 0),
        ("starting_grid", 2024, 599, 0, 0),
    ]
    assert offline.rows_loaded == 23 + 113 + 2171 + 555  # 2023 only


def test_a_snapshot_never_marks_a_live_record_removed(fresh_db, httpx_mock):
    """A snapshot that lacks a record live has (store() with the snapshot's real 2024 meetings
    minus one, as an older snapshot would be) removes nothing live; one from a snapshot, yes."""
    from racemap.openf1.loader import store

    answer(httpx_mock, 2024)
    load(fresh_db, [2024])
    older = read_snapshot("meetings", 2024)
    dropped = older.records.pop()["meeting_key"]
    with fresh_db.transaction() as conn:
        kept = store(conn, older, "older-snapshot", datetime.now(UTC))
    assert (kept.rows_loaded, kept.rows_removed) == (0, 0)
    assert query(fresh_db, "select count(*) from raw.openf1_meetings where removed_at is null") == [
        (25,)
    ]

    load_openf1(fresh_db, [2023], offline=True)
    older_2023 = read_snapshot("meetings", 2023)
    gone = older_2023.records.pop()["meeting_key"]
    with fresh_db.transaction() as conn:
        assert store(conn, older_2023, "older-snapshot", datetime.now(UTC)).rows_removed == 1
    assert query(
        fresh_db, "select meeting_key, source from raw.openf1_meetings where removed_at is not null"
    ) == [(gone, "snapshot")]
    assert dropped != gone


def test_the_load_notebook_without_a_load_or_a_run_id_says_what_to_give():
    """load=False shows the load of run_id: without one there is nothing to show, which is not
    "every season is settled" (what the notebook said of an empty audit)."""
    from racemap.errors import UsageError

    with pytest.raises(UsageError, match="load=False shows the load of run_id: give run_id"):
        load_audit(None, None)
