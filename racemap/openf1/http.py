"""HTTP plumbing of the OpenF1 client (racemap/openf1/client.py) and its OAuth2 flow
(racemap/openf1/auth.py): the client-side rate limit, which answers are worth asking again for,
``Retry-After``, and the ``detail`` of an error body."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from email.utils import parsedate_to_datetime

import httpx

from racemap.errors import blank_secrets

RETRY_STATUSES = {429, 500, 502, 503, 504}


class RetryableResponse(Exception):
    """An answer worth asking again for: throttling, a server error, or a body that is not JSON."""

    def __init__(self, message: str, retry_after: float | None = None, status: int | None = None):
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


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


def detail_of(
    response: httpx.Response, secrets: Iterable[str] = (), limit: int | None = None
) -> str:
    """The ``detail`` of a FastAPI error body, or '': without ``secrets``
    (:func:`racemap.errors.blank_secrets`), then cut to ``limit`` characters (cut first, a
    secret the body repeats lost its end, not its start)."""
    try:
        body = response.json()
    except ValueError:
        return ""
    detail = blank_secrets(str(body.get("detail", "")), secrets) if isinstance(body, dict) else ""
    return detail[:limit]


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
