"""OpenF1Client at the HTTP transport level (pytest-httpx): retries, waits, rate limit, errors.

No test here touches the network or sleeps: the transport is pytest-httpx's, and the client's
``sleep`` records the waits it asked for instead of waiting. Bodies come from the recorded data
(data/openf1/) and the recorded error bodies in tests/fixtures/openf1/.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest

from racemap.errors import RacemapError
from racemap.openf1.client import OpenF1Client, RateLimiter, parse_retry_after
from racemap.paths import DATA_DIR, SNAPSHOT_DIR

BASE = "https://openf1.test/v1"
FIXTURES = Path(__file__).parent / "fixtures" / "openf1"
SAMPLES_2026 = DATA_DIR / "openf1" / "samples_2026"


# -- recorded data, shared with test_loader.py ------------------------------------------------
def snapshot(endpoint: str, season: int) -> list[dict]:
    """The real records of one season from the bundled (legacy-shape) snapshot."""
    records = json.loads((SNAPSHOT_DIR / f"{endpoint}.json").read_text())
    return [r for r in records if r["year"] == season]


def samples_2026(endpoint: str) -> list[dict]:
    """The real current-shape records (2026) of data/openf1/samples_2026."""
    kind = endpoint.removesuffix("s")
    return [json.loads(p.read_text()) for p in sorted(SAMPLES_2026.glob(f"*__{kind}.json"))]


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def url(endpoint: str, season: int) -> str:
    return f"{BASE}/{endpoint}?year={season}"


def truncated(records: list[dict]) -> bytes:
    """A real answer cut off mid-way, as a dropped proxy connection leaves it."""
    body = json.dumps(records).encode()
    return body[: len(body) // 2]


class Waits(list):
    """A ``sleep`` that records the seconds asked for instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def waits() -> Waits:
    return Waits()


@pytest.fixture
def client(waits):
    """A client whose retries wait exactly their backoff (no jitter) and never really sleep."""
    with OpenF1Client(base_url=BASE, attempts=4, backoff=1.0, jitter=0.0, sleep=waits) as c:
        yield c


# -- retried answers ---------------------------------------------------------------------------
def test_429_waits_what_retry_after_says(httpx_mock, client, waits):
    meetings = snapshot("meetings", 2024)
    httpx_mock.add_response(
        url=url("meetings", 2024),
        status_code=429,
        headers={"Retry-After": "7"},
        content=fixture("rate_limited_429.json"),
    )
    httpx_mock.add_response(url=url("meetings", 2024), json=meetings)

    result = client.fetch("meetings", 2024)

    assert result.records == meetings and result.status == 200
    assert result.requests == 2 == len(httpx_mock.get_requests())
    assert waits == [7.0]  # Retry-After (7 s) wins over the 1 s backoff


def test_retry_after_as_an_http_date():
    now = datetime(2026, 5, 3, 17, 0, tzinfo=UTC)
    later = format_datetime(datetime(2026, 5, 3, 17, 0, 12, tzinfo=UTC), usegmt=True)
    assert parse_retry_after(later, now=now.timestamp) == 12.0
    assert parse_retry_after("3", now=now.timestamp) == 3.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_retry_after_longer_than_the_budget_fails_at_once(httpx_mock, waits):
    httpx_mock.add_response(
        url=url("meetings", 2024), status_code=429, headers={"Retry-After": "3600"}
    )
    with (
        OpenF1Client(base_url=BASE, jitter=0.0, retry_seconds=60.0, sleep=waits) as c,
        pytest.raises(RacemapError) as failed,
    ):
        c.fetch("meetings", 2024)
    assert waits == [] and c.requests_made == 1
    assert "asks to wait 3600 s (Retry-After), more than the 60 s left" in str(failed.value)
    assert "OPENF1_RETRY_SECONDS" in str(failed.value) and "--offline" in str(failed.value)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, "server_error_500.html"),
        (502, "bad_gateway_502.html"),
        (503, "unavailable_503.txt"),
    ],
)
def test_server_errors_are_retried(httpx_mock, client, waits, status, body):
    sessions = snapshot("sessions", 2024)
    httpx_mock.add_response(url=url("sessions", 2024), status_code=status, content=fixture(body))
    httpx_mock.add_response(url=url("sessions", 2024), json=sessions)

    result = client.fetch("sessions", 2024)

    assert result.records == sessions
    assert result.requests == 2 == len(httpx_mock.get_requests())
    assert waits == [1.0]


def test_backoff_is_exponential_and_then_fails_loudly(httpx_mock, client, waits):
    for _ in range(4):
        httpx_mock.add_response(
            url=url("sessions", 2024), status_code=503, content=fixture("unavailable_503.txt")
        )

    with pytest.raises(
        RacemapError,
        match=r"^OpenF1 is failing \(HTTP 503\): sessions for 2024 failed after 4 attempts: "
        r"HTTP 503 \(for 7 s\): try again later, or run with --offline",
    ):
        client.fetch("sessions", 2024)

    assert client.requests_made == 4 == len(httpx_mock.get_requests())
    assert waits == [1.0, 2.0, 4.0]


def test_an_answer_that_trickles_is_timed_out_as_a_whole(waits):
    """A byte every two seconds: each read is within httpx's timeout, the answer is not within
    response_seconds; asked again, then one line (a fake clock: nothing really waits)."""
    now = [0.0]
    answer = json.dumps(snapshot("meetings", 2024)[:1]).encode()

    class Trickle(httpx.SyncByteStream):
        def __iter__(self):
            for byte in answer:
                now[0] += 2.0
                yield bytes([byte])

    def trickling(request):
        return httpx.Response(200, stream=Trickle(), headers={"content-type": "application/json"})

    with (
        OpenF1Client(
            base_url=BASE,
            transport=httpx.MockTransport(trickling),
            response_seconds=20.0,
            attempts=2,
            jitter=0.0,
            sleep=waits,
            clock=lambda: now[0],
        ) as c,
        pytest.raises(RacemapError, match=r"unreachable for \d+ s \(ReadTimeout, 2 attempts\)"),
    ):
        c.fetch("meetings", 2024)
    assert now[0] < 2 * (20.0 + 2.0) + 1.0  # each attempt stopped at its deadline


def test_a_compressed_answer_is_read_once_decoded(waits):
    import gzip

    meetings = snapshot("meetings", 2024)

    def compressed(request):
        body = gzip.compress(json.dumps(meetings).encode())
        return httpx.Response(200, content=body, headers={"content-encoding": "gzip"})

    with OpenF1Client(base_url=BASE, transport=httpx.MockTransport(compressed), sleep=waits) as c:
        assert c.fetch("meetings", 2024).records == meetings


def test_backoff_has_jitter_and_a_ceiling(httpx_mock, waits):
    for _ in range(5):
        httpx_mock.add_response(url=url("meetings", 2024), status_code=502)
    with (
        OpenF1Client(
            base_url=BASE, attempts=5, backoff=1.0, jitter=0.5, max_wait=3.0, sleep=waits
        ) as c,
        pytest.raises(RacemapError),
    ):
        c.fetch("meetings", 2024)
    assert len(waits) == 4
    assert 1.0 <= waits[0] <= 1.5 and 2.0 <= waits[1] <= 2.5
    assert waits[2:] == [3.0, 3.0]


@pytest.mark.parametrize(
    "error",
    [
        httpx.ReadTimeout("The read operation timed out"),
        httpx.ConnectTimeout("timed out"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ConnectError("[Errno 104] Connection reset by peer"),
    ],
    ids=["read-timeout", "connect-timeout", "dropped", "reset"],
)
def test_timeouts_and_dropped_connections_are_retried(httpx_mock, client, waits, error):
    meetings = snapshot("meetings", 2024)
    httpx_mock.add_exception(error, url=url("meetings", 2024))
    httpx_mock.add_response(url=url("meetings", 2024), json=meetings)

    result = client.fetch("meetings", 2024)

    assert result.records == meetings
    assert result.requests == 2 == len(httpx_mock.get_requests())
    assert waits == [1.0]


def test_a_connection_that_never_answers_fails_loudly(httpx_mock, client):
    for _ in range(4):
        httpx_mock.add_exception(httpx.ReadTimeout("timed out"), url=url("meetings", 2024))
    with pytest.raises(
        RacemapError,
        match=r"^OpenF1 meetings for 2024 unreachable for 7 s \(ReadTimeout, 4 attempts\): check "
        r"the network, or run with --offline \(bundled snapshot\) or --openf1-url URL$",
    ):
        client.fetch("meetings", 2024)
    assert client.requests_made == 4


@pytest.mark.parametrize(
    "body",
    [
        fixture("html_200.html"),
        truncated(snapshot("meetings", 2024)),
        b'{"detail":"Rate exceeded"}',
        b"Rate exceeded",
    ],
    ids=["html", "truncated-json", "json-object", "rate-exceeded-text"],
)
def test_a_200_that_is_not_a_json_list_is_retried_then_fails(httpx_mock, client, waits, body):
    for _ in range(4):
        httpx_mock.add_response(url=url("meetings", 2024), content=body)

    with pytest.raises(RacemapError, match="meetings for 2024 failed after 4 attempts: HTTP 200"):
        client.fetch("meetings", 2024)

    assert client.requests_made == 4 and waits == [1.0, 2.0, 4.0]


def test_a_web_page_instead_of_openf1s_answer_says_to_check_the_url(httpx_mock, client, waits):
    """A URL that is not OpenF1's API (a web site answering HTML) said only "try again later"
    after the whole retry budget."""
    for _ in range(4):
        httpx_mock.add_response(url=url("meetings", 2024), content=fixture("html_200.html"))
    with pytest.raises(RacemapError) as info:
        client.fetch("meetings", 2024)
    assert "OpenF1's API? check --openf1-url / OPENF1_URL" in str(info.value)
    assert "\n" not in str(info.value)


def test_a_200_that_is_not_json_then_a_good_one(httpx_mock, client):
    meetings = snapshot("meetings", 2024)
    httpx_mock.add_response(url=url("meetings", 2024), content=truncated(meetings))
    httpx_mock.add_response(url=url("meetings", 2024), json=meetings)
    assert client.fetch("meetings", 2024).records == meetings
    assert client.requests_made == 2


# -- answers that are not retried --------------------------------------------------------------
def test_404_no_results_is_an_empty_season(httpx_mock, client, waits):
    httpx_mock.add_response(
        url=url("sessions", 2022), status_code=404, content=fixture("no_results_404.json")
    )
    result = client.fetch("sessions", 2022)
    assert (result.status, result.records, result.requests) == (404, [], 1)
    assert waits == []


def test_another_404_is_an_error_not_an_empty_season(httpx_mock, client):
    httpx_mock.add_response(
        url=url("meetings", 2024), status_code=404, json={"detail": "Not Found"}
    )
    with pytest.raises(RacemapError, match="404 for /v1/meetings: is the OpenF1 URL right"):
        client.fetch("meetings", 2024)
    assert client.requests_made == 1


@pytest.mark.parametrize(
    "status, then",
    [
        (400, "check --openf1-url / OPENF1_URL, try again later, or run with --offline"),
        (422, "check --openf1-url / OPENF1_URL, try again later, or run with --offline"),
        (403, "check OPENF1_USERNAME / OPENF1_PASSWORD (or unset them), or run with --offline"),
    ],
)
def test_another_refusal_is_one_line_saying_what_to_do(httpx_mock, client, status, then):
    """It said what OpenF1 answered, and not what to do (``... HTTP 400 for /v1/sessions: bad``)."""
    httpx_mock.add_response(url=url("sessions", 2024), status_code=status, json={"detail": "bad"})
    with pytest.raises(RacemapError) as failed:
        client.fetch("sessions", 2024)
    line = str(failed.value)
    assert line.startswith(f"OpenF1 answered HTTP {status} for /v1/sessions: bad: {then}")
    assert "\n" not in line and client.requests_made == 1


def test_a_live_session_lockout_is_one_line_saying_what_to_do(httpx_mock, client):
    detail = "Session in progress, access is restricted to authenticated users."
    httpx_mock.add_response(url=url("sessions", 2026), status_code=401, json={"detail": detail})
    with pytest.raises(RacemapError) as failed:
        client.fetch("sessions", 2026)
    line = str(failed.value)
    assert line.startswith("OpenF1 refuses anonymous requests while a live F1 session runs")
    assert "retry after the session ends" in line and "--offline" in line
    assert "OPENF1_USERNAME/OPENF1_PASSWORD" in line and "\n" not in line
    assert client.requests_made == 1  # not retried: a session lasts longer than the budget


def test_both_record_shapes_pass_through(httpx_mock, client):
    httpx_mock.add_response(url=url("meetings", 2026), json=samples_2026("meetings"))
    records = client.fetch("meetings", 2026).records
    assert {r["meeting_key"] for r in records} == {1284, 1308}
    assert all("date_end" in r and "is_cancelled" in r for r in records)


# -- rate limit, configuration -----------------------------------------------------------------
def test_rate_limiter_waits_for_the_oldest_request_to_leave_the_window():
    now = [100.0]
    waits = Waits()
    limiter = RateLimiter(3, 10.0, clock=lambda: now[0], sleep=waits)
    for step in (0.0, 1.0, 1.0):
        now[0] += step
        limiter.acquire()
    assert waits == []
    now[0] += 1.0  # t = 103: the request of t = 100 leaves the window at t = 110
    limiter.acquire()
    assert waits == [7.0]
    now[0] = 120.0  # everything has left the window
    limiter.acquire()
    assert waits == [7.0]


def test_the_client_side_limit_holds_requests_back(httpx_mock, waits):
    for season in (2023, 2024, 2025):
        httpx_mock.add_response(url=url("meetings", season), json=snapshot("meetings", season))
    with OpenF1Client(base_url=BASE, max_requests=2, period=10.0, sleep=waits) as c:
        for season in (2023, 2024, 2025):
            c.fetch("meetings", season)
    assert len(waits) == 1 and 0 < waits[0] <= 10.0  # the third waited for the first to expire
    assert c.requests_made == 3


def test_openf1_url_from_the_environment(monkeypatch, httpx_mock):
    monkeypatch.setenv("OPENF1_URL", "http://openf1.local:8000/v1/")
    httpx_mock.add_response(
        url="http://openf1.local:8000/v1/meetings?year=2023", json=snapshot("meetings", 2023)
    )
    with OpenF1Client() as c:
        assert c.base_url == "http://openf1.local:8000/v1"
        assert len(c.fetch("meetings", 2023).records) == 23


def test_the_audited_url_has_no_secret():
    with OpenF1Client(base_url="https://racemap:s3cret@openf1.test/v1") as c:
        assert c.safe_url("sessions", 2024) == "https://openf1.test/v1/sessions?year=2024"


def test_the_rate_limit_is_configurable(monkeypatch):
    with OpenF1Client(base_url=BASE) as c:
        assert (c.limiter.max_requests, c.limiter.period) == (30, 10.0)
    monkeypatch.setenv("OPENF1_RATE_LIMIT", "60/10")
    with OpenF1Client(base_url=BASE) as c:
        assert (c.limiter.max_requests, c.limiter.period) == (60, 10.0)
    with OpenF1Client(base_url=BASE, max_requests=5, period=1.0) as c:
        assert (c.limiter.max_requests, c.limiter.period) == (5, 1.0)
    monkeypatch.setenv("OPENF1_RATE_LIMIT", "lots")
    with pytest.raises(RacemapError, match="OPENF1_RATE_LIMIT='lots'"):
        OpenF1Client(base_url=BASE)


# -- the local OpenF1 server (racemap.testing.openf1_server) -------------------------------
def test_the_local_server_answers_like_openf1():
    from racemap.testing.openf1_server import serve

    with serve() as server, httpx.Client(base_url=server.base_url) as http:
        assert server.base_url.startswith("http://127.0.0.1:")
        assert http.get("/meetings", params={"year": 2024}).json() == sorted(
            snapshot("meetings", 2024), key=lambda m: m["date_start"]
        )
        empty = http.get("/sessions", params={"year": 2022})
        assert (empty.status_code, empty.json()) == (404, {"detail": "No results found."})
        assert http.get("/sessions", params={"session_key": 9636}).json()[0]["session_name"] == (
            "Race"
        )
        assert server.requests == 3


def test_the_local_server_has_its_own_rate_limit():
    from racemap.testing.openf1_server import serve

    with serve(max_requests=2, period=60.0) as server, httpx.Client() as http:
        answers = [http.get(f"{server.base_url}/meetings?year=2023") for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert 1 <= int(answers[2].headers["retry-after"]) <= 60
        assert answers[2].json() == {"error": "Rate limit exceeded: 2 per 60 second"}
        assert server.requests == 3
        server.reset()
        assert server.requests == 0
        assert http.get(f"{server.base_url}/meetings?year=2023").status_code == 200
