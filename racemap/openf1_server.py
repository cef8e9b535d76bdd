"""A local OpenF1-compatible HTTP server, for tests and benchmarks that must not touch the internet.

``serve()`` starts it on 127.0.0.1 (a free port) in a background thread::

    from racemap.openf1_server import serve

    with serve() as server:            # the bundled snapshot, 30 requests / 10 s
        client = OpenF1Client(base_url=server.base_url)
        ...
        server.requests                # requests received so far, throttled ones included
        server.reset()                 # counter and rate-limit window back to zero

It answers ``GET /v1/meetings`` and ``GET /v1/sessions`` like OpenF1 does for what racemap asks:
equality filters such as ``?year=2024`` (values cast to bool or int as OpenF1 casts them), results
sorted by ``date_start``, ``404 {"detail": "No results found."}`` when nothing matches, and
``429`` with ``Retry-After`` past its rate limit (OpenF1's own: 30 requests per 10 seconds).

``records_dir`` is a directory, or a list of them, of JSON files holding one record or a list:
``meetings.json`` / ``sessions.json`` (the snapshot's names) or ``<anything>__meeting.json`` /
``<anything>__session.json`` (the names in ``data/openf1/samples_2026``). ``None`` is the bundled
snapshot; to serve the snapshot plus extra records, pass both directories.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from .paths import SNAPSHOT_DIR

ENDPOINT_NAMES = {
    "meeting": "meetings",
    "meetings": "meetings",
    "session": "sessions",
    "sessions": "sessions",
}
NO_RESULTS = {"detail": "No results found."}


def _endpoint_of(path: Path) -> str | None:
    """``meetings.json`` → meetings; ``miami-2026-race__session.json`` → sessions; else None."""
    return ENDPOINT_NAMES.get(path.stem.rsplit("__", 1)[-1].lower())


def load_records(records_dir: str | Path | Sequence[str | Path] | None) -> dict[str, list[dict]]:
    """Every record of the directories' JSON files, by endpoint, in file-name order."""
    if records_dir is None:
        dirs = [SNAPSHOT_DIR]
    elif isinstance(records_dir, str | Path):
        dirs = [Path(records_dir)]
    else:
        dirs = [Path(d) for d in records_dir]
    found: dict[str, list[dict]] = {"meetings": [], "sessions": []}
    for directory in dirs:
        if not directory.is_dir():
            raise FileNotFoundError(f"no records directory {directory}")
        for path in sorted(directory.glob("*.json")):
            endpoint = _endpoint_of(path)
            if endpoint is None:
                continue
            data = json.loads(path.read_text(encoding="utf-8"))
            found[endpoint].extend(data if isinstance(data, list) else [data])
    return found


def _cast(value: str) -> object:
    """A query value as OpenF1 casts it: bool, then int or float, else the string."""
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def _sort_key(record: dict) -> tuple:
    return (
        str(record.get("date_start") or ""),
        record.get("meeting_key") or 0,
        record.get("session_key") or 0,
    )


class SlidingWindow:
    """The server's rate limit: at most ``max_requests`` admitted in any ``period`` seconds."""

    def __init__(self, max_requests: int, period: float, clock=time.monotonic):
        self.max_requests, self.period, self._clock = max_requests, period, clock
        self._admitted: deque[float] = deque()

    def admit(self) -> float | None:
        """None when the request may go on; else the seconds until it would be admitted."""
        now = self._clock()
        while self._admitted and now - self._admitted[0] >= self.period:
            self._admitted.popleft()
        if len(self._admitted) < self.max_requests:
            self._admitted.append(now)
            return None
        return self._admitted[0] + self.period - now

    def clear(self) -> None:
        self._admitted.clear()


class LocalOpenF1:
    """The server's state and answers; ``serve()`` puts it behind HTTP."""

    def __init__(self, records: dict[str, list[dict]], max_requests: int, period: float):
        self.records = {name: sorted(rows, key=_sort_key) for name, rows in records.items()}
        self.window = SlidingWindow(max_requests, period)
        self.max_requests, self.period = max_requests, period
        self.base_url = ""
        self._requests = 0
        self._lock = threading.Lock()

    @property
    def requests(self) -> int:
        """Requests received since the start or the last ``reset()``, throttled ones included."""
        with self._lock:
            return self._requests

    def reset(self) -> None:
        """Zero the request counter and empty the rate-limit window."""
        with self._lock:
            self._requests = 0
            self.window.clear()

    def answer(self, target: str) -> tuple[int, dict[str, str], object]:
        """(status, extra headers, JSON body) for a GET of ``target`` (path and query)."""
        with self._lock:
            self._requests += 1
            wait = self.window.admit()
        if wait is not None:
            limit = f"{self.max_requests} per {self.period:g} second"
            headers = {"Retry-After": str(max(1, math.ceil(wait)))}
            return 429, headers, {"error": f"Rate limit exceeded: {limit}"}
        url = urlsplit(target)
        endpoint = url.path.rstrip("/").rsplit("/", 1)[-1]
        if not url.path.startswith("/v1/") or endpoint not in self.records:
            return 404, {}, {"detail": "Not Found"}
        filters = parse_qs(url.query, keep_blank_values=True)
        rows = [r for r in self.records[endpoint] if _matches(r, filters)]
        return (200, {}, rows) if rows else (404, {}, NO_RESULTS)


def _matches(record: dict, filters: dict[str, list[str]]) -> bool:
    """Every filtered field equals one of its values (repeating a key ORs, as on OpenF1)."""
    return all(
        any(record.get(name) == _cast(value) for value in values)
        for name, values in filters.items()
    )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "racemap-openf1"
    timeout = 30

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        status, headers, body = self.server.app.answer(self.path)
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format, *args) -> None:  # noqa: A002
        """Quiet: tests and benchmarks read the counter, not an access log on stderr."""


@contextmanager
def serve(
    records_dir: str | Path | Sequence[str | Path] | None = None,
    max_requests: int = 30,
    period: float = 10.0,
) -> Iterator[LocalOpenF1]:
    """Run a local OpenF1 on 127.0.0.1 (a free port) for the ``with`` block."""
    app = LocalOpenF1(load_records(records_dir), max_requests, period)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.app = app
    host, port = httpd.server_address[:2]
    app.base_url = f"http://{host}:{port}/v1"
    thread = threading.Thread(target=httpd.serve_forever, name="openf1-server", daemon=True)
    thread.start()
    try:
        yield app
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
