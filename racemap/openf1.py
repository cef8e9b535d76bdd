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
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from tenacity import (
    RetryCallState,
    retry,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from .errors import RacemapError
from .paths import SNAPSHOT_DIR

DEFAULT_OPENF1_URL = "https://api.openf1.org/v1"
ENDPOINTS = ("meetings", "sessions")
RETRY_STATUSES = {429, 500, 502, 503, 504}


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
        with self._lock:
            while True:
                now = self._clock()
                while self._sent and now - self._sent[0] >= self.period:
                    self._sent.popleft()
                if len(self._sent) < self.max_requests:
                    self._sent.append(now)
                    return
                pause = self.period - (now - self._sent[0])
                self.waited += pause
                self._sleep(pause)


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _wait(max_wait: float):
    backoff = wait_exponential_jitter(initial=0.5, max=max_wait, jitter=0.5)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RetryableResponse) and exc.retry_after is not None:
            return min(exc.retry_after, max_wait)
        return backoff(state)

    return wait


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
    """A small OpenF1 client: ``fetch("meetings", 2024)`` returns the season's records."""

    base_url: str = field(default_factory=lambda: os.environ.get("OPENF1_URL", DEFAULT_OPENF1_URL))
    max_requests: int = 30
    period: float = 10.0
    timeout: float = 30.0
    attempts: int = 5
    max_wait: float = 30.0
    transport: httpx.BaseTransport | None = None
    requests_made: int = 0

    def __post_init__(self):
        self.base_url = self.base_url.rstrip("/")
        self.limiter = RateLimiter(self.max_requests, self.period)
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=self.timeout,
            transport=self.transport,
            headers={"accept": "application/json", "user-agent": "racemap"},
            event_hooks={"request": [self._count]},
        )

    def _count(self, request: httpx.Request) -> None:
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

    def fetch(self, endpoint: str, season: int) -> FetchResult:
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown OpenF1 endpoint {endpoint!r}")
        before = self.requests_made

        @retry(
            retry=retry_if_exception_type((RetryableResponse, httpx.TransportError)),
            stop=stop_after_attempt(self.attempts),
            wait=_wait(self.max_wait),
            reraise=True,
        )
        def once() -> tuple[int, list]:
            self.limiter.acquire()
            response = self._http.get(f"/{endpoint}", params={"year": season})
            return self._interpret(response)

        try:
            status, records = once()
        except RetryableResponse as exc:
            raise RacemapError(
                f"OpenF1 {endpoint} for {season} failed after {self.attempts} attempts: {exc}"
            ) from None
        except httpx.TransportError as exc:
            raise RacemapError(
                f"OpenF1 {endpoint} for {season} unreachable after {self.attempts} attempts: "
                f"{type(exc).__name__}"
            ) from None
        return FetchResult(
            endpoint,
            season,
            self.safe_url(endpoint, season),
            status,
            records,
            self.requests_made - before,
        )

    @staticmethod
    def _interpret(response: httpx.Response) -> tuple[int, list]:
        status = response.status_code
        if status in RETRY_STATUSES or "rate exceeded" in response.text[:200].lower():
            raise RetryableResponse(
                f"HTTP {status}", _parse_retry_after(response.headers.get("retry-after"))
            )
        if status == 404:
            try:
                body = response.json()
            except ValueError:
                body = None
            if isinstance(body, dict) and "no results" in str(body.get("detail", "")).lower():
                return status, []
            raise RacemapError(f"OpenF1 answered 404 for {response.request.url.path}")
        if status != 200:
            raise RacemapError(f"OpenF1 answered HTTP {status} for {response.request.url.path}")
        try:
            body = response.json()
        except ValueError:
            raise RetryableResponse("HTTP 200 whose body is not JSON") from None
        if not isinstance(body, list):
            raise RetryableResponse(
                f"HTTP 200 whose body is a JSON {type(body).__name__}, not a list"
            )
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
