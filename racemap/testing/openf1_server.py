"""A local OpenF1-compatible HTTP server, for tests and benchmarks that must not touch the internet.

``serve()`` starts it on 127.0.0.1 (a free port) in a background thread::

    from racemap.testing.openf1_server import serve

    with serve() as server:            # the bundled snapshot, 30 requests / 10 s
        client = OpenF1Client(base_url=server.base_url)
        ...
        server.requests                # requests received so far, throttled ones included
        server.reset()                 # counter and rate-limit window back to zero

It answers ``GET /v1/<endpoint>`` for every endpoint of the registry
(racemap/openf1/endpoints.py: meetings, sessions, session_result, starting_grid and the race
data, laps, stints, ...) like OpenF1 does for what racemap asks: filters such as ``?year=2024``,
``?meeting_key>=1229&meeting_key<=1252`` or ``?session_key=9606`` (operators literal or
URL-encoded, values cast as OpenF1 casts them, repeated keys ORed, a lower and an upper bound
forming a range), results sorted by the endpoint's ``order_by`` fields, ``404 {"detail": "No
results found."}`` when nothing matches, and ``429`` with ``Retry-After`` past its rate limit
(OpenF1's own: 30 requests per 10 seconds).

``records_dir`` is a directory, or a list of them, of JSON files holding one record or a list:
each endpoint's ``snapshot_file`` (``meetings.json``, ``laps.json``, ...) or
``<anything>__<endpoint>.json`` (also the registry's ``server_files`` stems, e.g.
``<anything>__meeting.json`` as in ``data/openf1/samples_2026``). ``None`` is the bundled
snapshot; to serve the snapshot plus extra records, pass both directories, or pass
``records={"session_result": [...]}``. A missing file is an endpoint with no records.

OAuth2 as on https://openf1.org/auth.html, for tests: with ``credentials=(user, password)``,
``POST /token`` (form ``username``, ``password``) issues bearer tokens lasting ``token_seconds``;
``server.session_in_progress = True`` makes every anonymous ``/v1`` call answer 401 "Session in
progress, ..." as OpenF1 does during a live session (https://github.com/br-g/openf1/issues/257);
``server.revoke_tokens()`` makes the tokens issued so far answer 401.
"""

from __future__ import annotations

import json
import math
import secrets
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, parse_qsl, urlsplit

from racemap.openf1 import endpoints
from racemap.paths import SNAPSHOT_DIR

# File-name stem -> endpoint: each endpoint's snapshot file and name, and its server_files.
ENDPOINT_NAMES = {
    stem: e.name
    for e in endpoints.REGISTRY
    for stem in (Path(e.snapshot_file).stem, e.name, *e.server_files)
}
NO_RESULTS = {"detail": "No results found."}
# The body of https://github.com/br-g/openf1/issues/257 (seen as HTTP 401 in https://github.com/br-g/openf1/issues/220).
LIVE_SESSION = {
    "detail": "Session in progress, access is restricted to authenticated users. "
    "Sign up here: https://tally.so/r/w2yWDb"
}


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
    found: dict[str, list[dict]] = {name: [] for name in sorted(set(ENDPOINT_NAMES.values()))}
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
    """A query value as OpenF1 casts it: bool, then int or float, then a date, else the string
    (``cast`` in https://github.com/br-g/openf1/blob/main/src/openf1/util/type_casting.py)."""
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return _as_datetime(value) or value


def _as_datetime(value: object) -> datetime | None:
    """An ISO date or timestamp as an aware datetime (UTC when it has no offset), else None."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# OpenF1 looks the operators up in this order (``ComparisonOperator`` in
# https://github.com/br-g/openf1/blob/main/src/openf1/services/query_api/query_params.py).
OPERATORS = (">=", "<=", "=", ">", "<")


class BadFilter(ValueError):
    """A query parameter with no operator (OpenF1: "No valid operator found")."""


def parse_filters(query: str) -> dict[str, list[tuple[str, object]]]:
    """``{field: [(operator, value), ...]}`` of a query string, read the way OpenF1 reads it.

    OpenF1 rebuilds each parsed pair as ``key=value`` (``key`` alone when the value is empty) and
    splits it at the first operator found (``_split_query_params``, ``_str_to_query_params`` in
    the file above). So ``meeting_key>=1229`` and ``meeting_key%3E=1229`` mean ``>= 1229``, and
    ``meeting_key%3E%3D=1229`` means ``>= "=1229"`` (which matches nothing), as on OpenF1.
    A date without a time covers its whole UTC day, as ``_adjust_time_param`` there does.
    """
    filters: dict[str, list[tuple[str, object]]] = defaultdict(list)
    for key, value in parse_qsl(query, keep_blank_values=True):
        text = f"{key}={value}" if value else key
        operator = next((op for op in OPERATORS if op in text), None)
        if operator is None:
            raise BadFilter(f"No valid operator found in `{text}`.")
        name, _, raw = text.partition(operator)
        filters[name.lower()] += _whole_days(operator, raw, _cast(raw))
    return dict(filters)


def _whole_days(operator: str, raw: str, value: object) -> list[tuple[str, object]]:
    if not isinstance(value, datetime) or len(raw) != 10:  # not a date alone
        return [(operator, value)]
    next_day = value + timedelta(days=1)
    return {
        "=": [(">=", value), ("<", next_day)],
        ">": [(">=", next_day)],
        "<=": [("<", next_day)],
    }.get(operator, [(operator, value)])


def _compare(value: object, operator: str, wanted: object) -> bool:
    if isinstance(wanted, datetime):
        value = _as_datetime(value)
    if value is None or isinstance(value, bool) != isinstance(wanted, bool):
        return False
    try:
        if operator == "=":
            return value == wanted
        return {
            ">=": value >= wanted,
            "<=": value <= wanted,
            ">": value > wanted,
            "<": value < wanted,
        }[operator]
    except TypeError:  # a string against a number: MongoDB matches nothing either
        return False


def _field_matches(value: object, predicates: list[tuple[str, object]]) -> bool:
    """OpenF1's rule for one field: equalities ORed, each lower bound paired with the closest
    upper bound above it into a range (AND), ranges and unpaired bounds ORed
    (``_generate_query_predicate`` in https://github.com/br-g/openf1/blob/main/src/openf1/util/db.py).
    """
    unique = list(dict.fromkeys(predicates, None))
    alone = [p for p in unique if p[0] == "="]
    try:
        lowers = sorted((p for p in unique if p[0] in (">", ">=")), key=lambda p: p[1])
        uppers = sorted((p for p in unique if p[0] in ("<", "<=")), key=lambda p: p[1])
    except TypeError:  # bounds of different types: none pairs into a range
        return any(_compare(value, *p) for p in unique)
    ranges = []
    for lower in lowers:
        upper = next((u for u in uppers if lower[1] <= u[1]), None)
        if upper is None:
            alone.append(lower)
        else:
            uppers.remove(upper)
            ranges.append((lower, upper))
    alone += uppers
    return any(_compare(value, *p) for p in alone) or any(
        _compare(value, *low) and _compare(value, *high) for low, high in ranges
    )


def _sort_key(order_by: tuple[str, ...]) -> Callable[[dict], tuple]:
    """Records in the order of the endpoint's ``order_by`` fields, missing values first."""

    def key(record: dict) -> tuple:
        values = (record.get(name) for name in order_by)
        return tuple((v is not None, v if isinstance(v, int | float) else str(v)) for v in values)

    return key


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

    def __init__(
        self,
        records: dict[str, list[dict]],
        max_requests: int,
        period: float,
        *,
        credentials: tuple[str, str] | None = None,
        token_seconds: float = 3600.0,
        session_in_progress: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.records = {
            name: sorted(rows, key=_sort_key(_order_of(name))) for name, rows in records.items()
        }
        self.window = SlidingWindow(max_requests, period, clock)
        self.max_requests, self.period = max_requests, period
        self.credentials, self.token_seconds = credentials, token_seconds
        self.session_in_progress = session_in_progress  # switch it on and off between requests
        self.base_url = ""
        self.tokens_issued = 0
        self._tokens: dict[str, float] = {}  # token -> when it expires
        self._clock = clock
        self._requests = 0
        self._lock = threading.Lock()

    @property
    def requests(self) -> int:
        """Requests received since the start or the last ``reset()``, throttled ones and token
        requests included."""
        with self._lock:
            return self._requests

    def reset(self) -> None:
        """Zero the request counter and empty the rate-limit window."""
        with self._lock:
            self._requests = 0
            self.window.clear()

    def revoke_tokens(self) -> None:
        """Every token issued so far answers 401 from now on."""
        with self._lock:
            self._tokens.clear()

    def issue_token(self, body: str) -> tuple[int, dict[str, str], object]:
        """``POST /token``: a bearer token for the configured username and password."""
        with self._lock:
            self._requests += 1
            if self.credentials is None:
                return 404, {}, {"detail": "Not Found"}
            form = {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}
            if (form.get("username"), form.get("password")) != self.credentials:
                return 401, {}, {"detail": "Incorrect username or password"}
            token = secrets.token_urlsafe(24)
            self._tokens[token] = self._clock() + self.token_seconds
            self.tokens_issued += 1
        # expires_in is a string on https://openf1.org/auth.html
        return (
            200,
            {},
            {
                "access_token": token,
                "expires_in": f"{self.token_seconds:g}",
                "token_type": "bearer",
            },
        )

    def _token_state(self, authorization: str | None) -> str:
        """ "none" (anonymous), "valid", or "invalid" (unknown, revoked or expired)."""
        if not authorization or not authorization.lower().startswith("bearer "):
            return "none"
        token = authorization.split(" ", 1)[1].strip()
        with self._lock:
            expires = self._tokens.get(token)
        return "valid" if expires is not None and self._clock() < expires else "invalid"

    def answer(
        self, target: str, authorization: str | None = None
    ) -> tuple[int, dict[str, str], object]:
        """(status, extra headers, JSON body) for a GET of ``target`` (path and query)."""
        with self._lock:
            self._requests += 1
            wait = self.window.admit()
        if wait is not None:
            limit = f"{self.max_requests} per {self.period:g} second"
            headers = {"Retry-After": str(max(1, math.ceil(wait)))}
            return 429, headers, {"error": f"Rate limit exceeded: {limit}"}
        token = self._token_state(authorization) if self.credentials else "none"
        if token == "invalid":
            return 401, {}, {"detail": "Could not validate credentials"}
        if self.session_in_progress and token != "valid":
            return 401, {}, LIVE_SESSION
        url = urlsplit(target)
        endpoint = url.path.rstrip("/").rsplit("/", 1)[-1]
        if not url.path.startswith("/v1/") or endpoint not in self.records:
            return 404, {}, {"detail": "Not Found"}
        try:
            filters = parse_filters(url.query)
        except BadFilter as exc:
            return 400, {}, {"detail": str(exc)}
        rows = [r for r in self.records[endpoint] if _matches(r, filters)]
        return (200, {}, rows) if rows else (404, {}, NO_RESULTS)


def _order_of(name: str) -> tuple[str, ...]:
    known = endpoints.BY_NAME.get(name)
    return known.order_by if known else ("date_start", "meeting_key", "session_key")


def _matches(record: dict, filters: dict[str, list[tuple[str, object]]]) -> bool:
    """Every filtered field matches (different fields AND, as on OpenF1)."""
    return all(_field_matches(record.get(name), preds) for name, preds in filters.items())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "racemap-openf1"
    timeout = 30

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self._send(*self.server.app.answer(self.path, self.headers.get("Authorization")))

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace")
        if urlsplit(self.path).path.rstrip("/") == "/token":
            self._send(*self.server.app.issue_token(body))
        else:
            self._send(405, {}, {"detail": "Method Not Allowed"})

    def _send(self, status: int, headers: dict[str, str], body: object) -> None:
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
    *,
    records: dict[str, list[dict]] | None = None,
    credentials: tuple[str, str] | None = None,
    token_seconds: float = 3600.0,
    session_in_progress: bool = False,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[LocalOpenF1]:
    """Run a local OpenF1 on 127.0.0.1 (a free port) for the ``with`` block.

    ``records`` adds records by endpoint to those of ``records_dir``; ``credentials`` turns on
    ``POST /token``; ``clock`` (the rate limit's and the tokens') lets a test expire tokens.
    """
    served = load_records(records_dir)
    for endpoint, rows in (records or {}).items():
        served.setdefault(endpoint, []).extend(rows)
    app = LocalOpenF1(
        served,
        max_requests,
        period,
        credentials=credentials,
        token_seconds=token_seconds,
        session_in_progress=session_in_progress,
        clock=clock,
    )
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.app = app
    host, port = httpd.server_address[:2]
    app.base_url = f"http://{host}:{port}/v1"
    thread = threading.Thread(
        target=httpd.serve_forever, args=(0.05,), name="openf1-server", daemon=True
    )
    thread.start()
    try:
        yield app
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
