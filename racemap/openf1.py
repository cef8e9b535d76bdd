"""Fetching OpenF1 meetings and sessions: over HTTP (httpx + tenacity) or from the snapshot.

One request per endpoint per season. A client-side rate limit keeps us under OpenF1's 30 requests
per 10 seconds; 429, 5xx, timeouts, dropped connections and 200 answers that are not a JSON list
are retried with exponential backoff and jitter (``Retry-After`` honoured), then fail loudly.
``404 {"detail": "No results found."}`` is an empty season.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from .errors import RacemapError
from .paths import SNAPSHOT_DIR

DEFAULT_OPENF1_URL = "https://api.openf1.org/v1"
ENDPOINTS = ("meetings", "sessions")
DEFAULT_RATE_LIMIT = (30, 10.0)  # OpenF1's: 30 requests per 10 seconds (OPENF1_NOTES §7)
RETRY_STATUSES = {429, 500, 502, 503, 504}
# Worth asking again: timeouts, refused or reset connections, a server that hung up mid-answer.
# Not every httpx.TransportError: an unsupported scheme or a bad proxy will not heal by waiting.
RETRY_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


class RetryableResponse(Exception):
    """An answer worth asking again for: throttling, a server error, or a body that is not JSON."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class RateLimiter:
    """At most ``max_requests`` in any ``period`` seconds (a sliding window).

    Written here because it is a dozen lines and the loader makes a handful of synchronous
    requests; the libraries on PyPI are async-first or bring a storage backend.
    """

    def __init__(
        self, max_requests: int = 30, period: float = 10.0, clock=time.monotonic, sleep=time.sleep
    ):
        if max_requests < 1 or period <= 0:
            raise ValueError("rate limit needs max_requests >= 1 and period > 0")
        self.max_requests, self.period = max_requests, period
        self._clock, self._sleep = clock, sleep
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()
        self.waited = 0.0

    def acquire(self) -> None:
        """Wait until one more request fits in the window, then count it.

        One sleep at most per call, until the oldest request leaves the window: a fake ``sleep``
        (tests) cannot spin this forever.
        """
        with self._lock:
            now = self._clock()
            while self._sent and now - self._sent[0] >= self.period:
                self._sent.popleft()
            if len(self._sent) >= self.max_requests:
                free_at = self._sent.popleft() + self.period
                pause = free_at - now
                self.waited += pause
                self._sleep(pause)
                now = max(self._clock(), free_at)
            self._sent.append(now)


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now())
    except (TypeError, ValueError, IndexError):
        return None


def backoff_wait(
    backoff: float, jitter: float, max_wait: float, max_retry_after: float
) -> Callable[[RetryCallState], float]:
    """Tenacity wait: exponential backoff with jitter, but never shorter than ``Retry-After``.

    ``Retry-After`` is the server's minimum, so it wins over a shorter backoff; it is capped at
    ``max_retry_after`` so that a confused server cannot park the load for an hour.
    """
    exponential = wait_exponential_jitter(multiplier=backoff, max=max_wait, jitter=jitter)

    def wait(state: RetryCallState) -> float:
        pause = exponential(state)
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RetryableResponse) and exc.retry_after is not None:
            pause = max(pause, min(exc.retry_after, max_retry_after))
        return pause

    return wait


def rate_limit_from_env() -> tuple[int, float]:
    """``OPENF1_RATE_LIMIT=N/SECONDS`` (e.g. ``60/10`` for a self-hosted OpenF1); default 30/10.

    An environment variable, so the CLI and the notebooks can change it without a new flag.
    """
    text = os.environ.get("OPENF1_RATE_LIMIT", "").strip()
    if not text:
        return DEFAULT_RATE_LIMIT
    try:
        requests, seconds = text.split("/")
        limit = int(requests), float(seconds)
    except ValueError:
        limit = (0, 0.0)
    if limit[0] < 1 or limit[1] <= 0:
        raise RacemapError(f"OPENF1_RATE_LIMIT={text!r}: give requests/seconds, e.g. 30/10")
    return limit


@dataclass
class FetchResult:
    endpoint: str
    season: int
    url: str
    status: int
    records: list
    requests: int


@dataclass
class OpenF1Client:
    """A small OpenF1 client: ``fetch("meetings", 2024)`` returns the season's records.

    Every knob of the retry and the rate limit is a field, so tests can set the waits to zero
    (or pass a recording ``sleep``) instead of sleeping for seconds.
    """

    # Not in the repr: a self-hosted OpenF1's URL may carry a password.
    base_url: str = field(
        default_factory=lambda: os.environ.get("OPENF1_URL") or DEFAULT_OPENF1_URL, repr=False
    )
    max_requests: int | None = None  # None: $OPENF1_RATE_LIMIT, else 30 ...
    period: float | None = None  # ... per 10 seconds
    timeout: float = 30.0
    attempts: int = 5
    backoff: float = 1.0
    jitter: float = 1.0
    max_wait: float = 30.0
    max_retry_after: float = 120.0
    transport: httpx.BaseTransport | None = field(default=None, repr=False)
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    requests_made: int = 0

    def __post_init__(self):
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.base_url = self.base_url.rstrip("/")
        if self.max_requests is None or self.period is None:
            env_requests, env_period = rate_limit_from_env()
            self.max_requests = self.max_requests or env_requests
            self.period = self.period or env_period
        self.limiter = RateLimiter(self.max_requests, self.period, sleep=self.sleep)
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=self.timeout,
            transport=self.transport,
            follow_redirects=True,
            headers={"accept": "application/json", "user-agent": "racemap"},
            event_hooks={"request": [self._count]},
        )

    def _count(self, request: httpx.Request) -> None:
        """Every request that leaves, retries and redirects included: the figure in summary.json."""
        self.requests_made += 1

    def close(self) -> None:
        self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def safe_url(self, endpoint: str, season: int) -> str:
        """The request URL without credentials, for the audit table."""
        url = httpx.URL(f"{self.base_url}/{endpoint}", params={"year": season})
        return str(url.copy_with(username=None, password=None))

    def _retrying(self) -> Retrying:
        return Retrying(
            retry=retry_if_exception_type((RetryableResponse, *RETRY_ERRORS)),
            stop=stop_after_attempt(self.attempts),
            wait=backoff_wait(self.backoff, self.jitter, self.max_wait, self.max_retry_after),
            sleep=self.sleep,
            reraise=True,
        )

    def _get(self, endpoint: str, params: dict) -> tuple[int, list]:
        """One attempt: wait for the rate limit, ask, and judge the answer."""
        self.limiter.acquire()
        response = self._http.get(f"/{endpoint}", params=params)
        return interpret(response)

    def query(self, endpoint: str, **params) -> list:
        """Records of ``endpoint`` matching ``params`` (e.g. ``meeting_key=1229``), retried
        like :meth:`fetch`; RacemapError when it fails."""
        what = f"OpenF1 {endpoint} {params}"
        try:
            return self._retrying()(self._get, endpoint, params)[1]
        except (RetryableResponse, *RETRY_ERRORS, httpx.HTTPError) as exc:
            raise RacemapError(f"{what} failed: {exc or type(exc).__name__}") from None

    def fetch(self, endpoint: str, season: int) -> FetchResult:
        """One season of one endpoint, retried as the module says; RacemapError when it fails."""
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown OpenF1 endpoint {endpoint!r}")
        before = self.requests_made
        what = f"OpenF1 {endpoint} for {season}"
        try:
            status, records = self._retrying()(self._get, endpoint, {"year": season})
        except RetryableResponse as exc:
            raise RacemapError(f"{what} failed after {self.attempts} attempts: {exc}") from None
        except RETRY_ERRORS as exc:
            raise RacemapError(
                f"{what} unreachable after {self.attempts} attempts: {type(exc).__name__}"
            ) from None
        except httpx.HTTPError as exc:
            raise RacemapError(f"{what} failed: {type(exc).__name__}") from None
        return FetchResult(
            endpoint,
            season,
            self.safe_url(endpoint, season),
            status,
            records,
            self.requests_made - before,
        )


def _detail(response: httpx.Response) -> str:
    """The ``detail`` of a FastAPI error body, or ''."""
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("detail", "")) if isinstance(body, dict) else ""


def interpret(response: httpx.Response) -> tuple[int, list]:
    """(status, records) of an answer; RetryableResponse when asking again may help.

    Only a 200 whose body is a JSON list, or the 404 "No results found." of an empty season,
    yields records: an HTML page or truncated JSON must never pass for an empty season.
    """
    status = response.status_code
    if status in RETRY_STATUSES:
        raise RetryableResponse(
            f"HTTP {status}", parse_retry_after(response.headers.get("retry-after"))
        )
    if status == 404:
        if "no results" in _detail(response).lower():
            return status, []
        raise RacemapError(
            f"OpenF1 answered 404 for {response.request.url.path}: is the OpenF1 URL right?"
        )
    if status != 200:
        if "rate exceeded" in response.text[:200].lower():
            raise RetryableResponse(f"HTTP {status} saying 'Rate exceeded'")
        detail = _detail(response)[:200]
        raise RacemapError(
            f"OpenF1 answered HTTP {status} for {response.request.url.path}"
            + (f": {detail}" if detail else "")
        )
    try:
        body = response.json()
    except ValueError:
        # Production throttling has been seen as a plain "Rate exceeded" text (OPENF1_NOTES §7).
        throttled = "rate exceeded" in response.text[:200].lower()
        raise RetryableResponse(
            "HTTP 200 saying 'Rate exceeded'" if throttled else "HTTP 200 whose body is not JSON"
        ) from None
    if not isinstance(body, list):
        raise RetryableResponse(f"HTTP 200 whose body is a JSON {type(body).__name__}, not a list")
    return status, body


def read_snapshot(endpoint: str, season: int, snapshot_dir: Path = SNAPSHOT_DIR) -> FetchResult:
    """The bundled snapshot's records of one season (the file holds every season)."""
    path = Path(snapshot_dir) / f"{endpoint}.json"
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RacemapError(f"cannot read the OpenF1 snapshot {path}: {exc}") from None
    season_records = [r for r in records if isinstance(r, dict) and r.get("year") == season]
    return FetchResult(
        endpoint, season, f"snapshot:{path.name}?year={season}", 200, season_records, 0
    )
