"""Fetching OpenF1 records: over HTTP (httpx + tenacity) or from the snapshot.

One request per endpoint per season. A client-side rate limit keeps us under OpenF1's 30 requests
per 10 seconds; 429, 5xx, timeouts, dropped connections and 200 answers that are not a JSON list
are retried with exponential backoff and jitter (``Retry-After`` honoured) for a time budget
(``OPENF1_RETRY_SECONDS``, default 120 s), then fail with one line saying what to do.
``404 {"detail": "No results found."}`` is an empty answer.

With ``OPENF1_USERNAME`` / ``OPENF1_PASSWORD`` set, every request carries an OAuth2 bearer token
(:class:`OpenF1Token`), which OpenF1 requires from everyone while a live session runs.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from urllib.parse import quote

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential_jitter

from racemap.errors import RacemapError, blank_secrets
from racemap.openf1 import endpoints
from racemap.openf1.auth import OpenF1Token, token_url_for
from racemap.openf1.http import (
    RETRY_STATUSES,
    RateLimiter,
    RetryableResponse,
    detail_of,
    parse_retry_after,
)
from racemap.settings import Environment, load_environment

log = logging.getLogger(__name__)

ENDPOINTS = endpoints.names(endpoints.SCHEDULE)  # fetched per season (``?year=``)
# OpenF1's own limit: "30 requests every 10 seconds per IP", `@rate_limiter.limit("30/10seconds")`
# in https://github.com/br-g/openf1/blob/main/src/openf1/services/query_api/app.py: the default of
# OPENF1_RATE_LIMIT (racemap.settings.Environment), as OPENF1_RETRY_SECONDS's is 120.
# Worth asking again: timeouts, refused or reset connections, a server that hung up mid-answer.
# Not every httpx.TransportError: an unsupported scheme or a bad proxy will not heal by waiting.
RETRY_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
# While a live session runs, OpenF1 refuses every unauthenticated call, historical ones too, with
# a 401 saying {"detail":"Session in progress, access is restricted to authenticated users. ..."}:
# https://github.com/br-g/openf1/issues/234, https://github.com/br-g/openf1/issues/257
LIVE_SESSION_DETAIL = "session in progress"
OFFLINE_HINT = "run with --offline (bundled snapshot)"


# -- query strings ---------------------------------------------------------------------------------
_FILTER = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(>=|<=|>|<|=)?$")
# The operator as it goes on the wire. OpenF1 rebuilds each filter as f"{key}={value}" from the
# parsed query and then splits it at the operator (`_split_query_params` and `_str_to_query_params`
# in https://github.com/br-g/openf1/blob/main/src/openf1/services/query_api/query_params.py).
# So `>=` must travel as `%3E` plus the literal `=` separator: httpx's own encoding of a
# `{"meeting_key>=": 1229}` param gives `meeting_key%3E%3D=1229`, which OpenF1 reads as
# "meeting_key >= '=1229'" and answers "No results found.".
_WIRE_OPERATOR = {"": "=", "=": "=", ">=": "%3E=", "<=": "%3C=", ">": "%3E", "<": "%3C"}

Params = Mapping[str, object] | Iterable[tuple[str, object]]


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):  # datetime too
        return value.isoformat()
    if value is None:
        raise ValueError("an OpenF1 filter needs a value, not None")
    return str(value)


def _pairs(params: Params | None) -> list[tuple[str, object]]:
    """``params`` as a list of (key, value): a mapping, a list, or any iterable of pairs."""
    if not params:
        return []
    return list(params.items() if isinstance(params, Mapping) else params)


def build_query(params: Params | None) -> str:
    """An OpenF1 query string from ``{"year": 2024}`` or ``[("meeting_key>=", 1229), ...]``.

    A key may end with an operator (``>=``, ``<=``, ``>``, ``<``; none or ``=`` is equality);
    a list value repeats the key (OpenF1 ORs repeats; a ``>=`` and a ``<=`` form a range,
    https://github.com/br-g/openf1/pull/252). Values are percent-encoded (a ``+`` of a UTC offset
    included), so ``date_start>=2024-03-01T00:00:00+00:00`` arrives intact.
    """
    parts = []
    for key, value in _pairs(params):
        match = _FILTER.match(key)
        if not match:
            raise ValueError(f"not an OpenF1 filter: {key!r} (a field name, then >=, <=, > or <)")
        name, operator = match.group(1), match.group(2) or ""
        values = value if isinstance(value, list | tuple | set | frozenset) else [value]
        for one in values:
            parts.append(f"{name}{_WIRE_OPERATOR[operator]}{quote(_text(one), safe='')}")
    return "&".join(parts)


def _describe(params: Params | None) -> str:
    """``meeting_key>=1229&meeting_key<=1252``: the filters as a person writes them."""
    shown = []
    for key, value in _pairs(params):
        values = value if isinstance(value, list | tuple | set | frozenset) else [value]
        separator = "" if key.endswith(("=", ">", "<")) else "="
        shown += [f"{key}{separator}{_text(v)}" for v in values]
    return "&".join(shown)


@dataclass
class FetchResult:
    endpoint: str
    season: int
    url: str
    status: int
    records: list
    requests: int
    session_key: int | None = None  # a race-data fetch (``?session_key=``)


@dataclass
class _Budget:
    """One fetch's retry budget: ``seconds`` from the first attempt on, on the client's clock."""

    seconds: float
    clock: Callable[[], float]
    attempts: int | None = None
    tries: int = 0
    slept: float = 0.0
    stopped_by: str | None = None  # "attempts", "time" or "retry_after"
    started: float = field(init=False)

    def __post_init__(self):
        self.started = self.clock()

    def left(self) -> float:
        return max(0.0, self.seconds - (self.clock() - self.started))

    def spent(self) -> float:
        """Seconds spent so far; with a fake ``sleep`` the waits asked for count."""
        return max(self.clock() - self.started, self.slept)


@dataclass
class OpenF1Client:
    """A small OpenF1 client: ``fetch("meetings", 2024)`` returns the season's records;
    ``fetch_where("session_result", 2024, {"meeting_key>=": 1229})`` any filtered endpoint.

    Every knob of the retry, the rate limit and the clock is a field, so tests can set the waits
    to zero (or pass a recording ``sleep`` and a fake ``clock``) instead of sleeping.
    """

    # Not in the repr: a self-hosted OpenF1's URL may carry a password.
    base_url: str | None = field(default=None, repr=False)  # None: the environment's OPENF1_URL
    max_requests: int | None = None  # None: $OPENF1_RATE_LIMIT, else 30 ...
    period: float | None = None  # ... per 10 seconds
    timeout: float = 30.0  # httpx's: to connect, and between two reads of an answer
    response_seconds: float = 300.0  # an answer's whole body, however it trickles
    retry_seconds: float | None = None  # None: $OPENF1_RETRY_SECONDS, else 120
    attempts: int | None = None  # an extra cap on attempts per fetch; None: the time budget only
    backoff: float = 1.0
    jitter: float = 1.0
    max_wait: float = 30.0
    # None: $OPENF1_USERNAME / $OPENF1_PASSWORD (none when unset); never in the repr.
    credentials: tuple[str, str] | None = field(default=None, repr=False)
    # Where what is not given comes from: the settings the caller loaded at its edge (a run, the
    # CLI), else this process's environment, read once here (a notebook, a test).
    environment: Environment | None = field(default=None, repr=False)
    token_url: str | None = None  # None: /token at the base URL's host (beside /v1)
    token_margin: float = 60.0  # renew the token this long before it expires
    transport: httpx.BaseTransport | None = field(default=None, repr=False)
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    requests_made: int = 0

    def __post_init__(self):
        if self.attempts is not None and self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        env = self.environment or load_environment()
        self.base_url = (self.base_url or env.openf1_url).rstrip("/")
        if self.retry_seconds is None:
            self.retry_seconds = env.openf1_retry_seconds
        elif not self.retry_seconds > 0:
            raise ValueError("retry_seconds must be positive")
        if self.max_requests is None or self.period is None:
            env_requests, env_period = env.openf1_rate_limit
            self.max_requests = self.max_requests or env_requests
            self.period = self.period or env_period
        self.limiter = RateLimiter(
            self.max_requests, self.period, clock=self.clock, sleep=self.sleep
        )
        credentials = self.credentials or env.openf1_credentials()
        self.token_url = self.token_url or token_url_for(self.base_url)
        self.auth = (
            OpenF1Token(*credentials, self.token_url, clock=self.clock, margin=self.token_margin)
            if credentials
            else None
        )
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=self.timeout,
            transport=self.transport,
            auth=self.auth,  # None: a user:password in the URL still goes as Basic auth
            follow_redirects=True,
            headers={"accept": "application/json", "user-agent": "racemap"},
            event_hooks={"request": [self._credentials_stay, self._count]},
        )

    def _credentials_stay(self, request: httpx.Request) -> None:
        """The token request carries the account's password in its body, and httpx re-sends the
        body when a 307 or 308 redirects it: to the token endpoint's own host it goes (http to
        https, say), to any other host it is not sent."""
        if request.method != "POST" or self.auth is None:
            return
        home = httpx.URL(self.token_url).host
        if request.url.host != home:
            raise RacemapError(
                f"OpenF1's token endpoint on {home} redirected the account's credentials to "
                f"{request.url.host}: not sent; set OPENF1_URL to the OpenF1 you mean"
            )

    def _count(self, request: httpx.Request) -> None:
        """Every request that leaves, retries, redirects and token requests included: the figure
        in summary.json."""
        self.requests_made += 1

    def close(self) -> None:
        self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _safe(self, url: httpx.URL) -> str:
        return str(url.copy_with(username=None, password=None))

    def safe_url(self, endpoint: str, season: int) -> str:
        """The request URL without credentials, for the audit table."""
        return self._safe(httpx.URL(f"{self.base_url}/{endpoint}", params={"year": season}))

    def _secrets(self) -> list[str]:
        secrets = self.auth.secrets() if self.auth else []
        return secrets + [s for s in (httpx.URL(self.base_url).password,) if s]

    # -- retries ---------------------------------------------------------------------------------
    def _wait(self, budget: _Budget) -> Callable[[RetryCallState], float]:
        """Exponential backoff with jitter, at least ``Retry-After``, never past the budget."""
        exponential = wait_exponential_jitter(
            multiplier=self.backoff, max=self.max_wait, jitter=self.jitter
        )

        def wait(state: RetryCallState) -> float:
            pause = exponential(state)
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, RetryableResponse) and exc.retry_after is not None:
                pause = max(pause, exc.retry_after)
            return min(pause, budget.left())

        return wait

    @staticmethod
    def _stop(budget: _Budget) -> Callable[[RetryCallState], bool]:
        """Stop when the budget is spent, the attempts cap is reached, or ``Retry-After`` asks
        for longer than what is left.

        tenacity's ``stop_after_delay`` reads ``time.monotonic`` itself; this one reads the
        client's ``clock``, so tests drive it with a fake one.
        """

        def stop(state: RetryCallState) -> bool:
            exc = state.outcome.exception() if state.outcome else None
            retry_after = exc.retry_after if isinstance(exc, RetryableResponse) else None
            left = budget.left()
            if budget.attempts is not None and state.attempt_number >= budget.attempts:
                budget.stopped_by = "attempts"
            elif left <= 0:
                budget.stopped_by = "time"
            elif retry_after is not None and retry_after > left:
                budget.stopped_by = "retry_after"
            return budget.stopped_by is not None

        return stop

    def _log_retry(self, what: str) -> Callable[[RetryCallState], None]:
        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            reason = str(exc) if isinstance(exc, RetryableResponse) else type(exc).__name__
            pause = state.upcoming_sleep
            log.info("OpenF1 %s: %s; asking again in %.1f s", what, reason, pause)
            if state.attempt_number == 1:  # once a fetch: what the wait is, and how to end it
                log.warning(
                    "OpenF1 %s: %s; asking again for up to %g s (OPENF1_RETRY_SECONDS): Ctrl-C "
                    "stops, --offline reads the bundled snapshot",
                    what,
                    reason,
                    self.retry_seconds,
                )

        return before_sleep

    def _request(self, what: str, path: str, query: str) -> tuple[int, list]:
        """GET ``path?query`` until it gives records or the budget is spent; one RacemapError
        line saying what to do when it fails."""
        budget = _Budget(self.retry_seconds, self.clock, self.attempts)

        def sleep(seconds: float) -> None:
            budget.slept += seconds
            self.sleep(seconds)

        def attempt() -> tuple[int, list]:
            budget.tries += 1
            self.limiter.acquire()
            return interpret(self._get(f"{path}?{query}" if query else path), self._secrets())

        retrying = Retrying(
            retry=retry_if_exception_type((RetryableResponse, *RETRY_ERRORS)),
            stop=self._stop(budget),
            wait=self._wait(budget),
            sleep=sleep,
            before_sleep=self._log_retry(what),
            reraise=True,
        )
        try:
            return retrying(attempt)
        except RacemapError as exc:
            raise RacemapError(blank_secrets(str(exc), self._secrets())) from None
        except RetryableResponse as exc:
            raise RacemapError(
                blank_secrets(self._gave_up(what, exc, budget), self._secrets())
            ) from None
        except RETRY_ERRORS as exc:
            raise RacemapError(
                f"OpenF1 {what} unreachable for {budget.spent():.0f} s ({type(exc).__name__}, "
                f"{budget.tries} attempts): check the network, or {OFFLINE_HINT} or "
                "--openf1-url URL"
            ) from None
        except httpx.HTTPError as exc:
            raise RacemapError(
                f"OpenF1 {what} failed: {type(exc).__name__}: check --openf1-url / OPENF1_URL, "
                f"or {OFFLINE_HINT}"
            ) from None

    def _get(self, url: str) -> httpx.Response:
        """GET ``url``, its whole answer read within :attr:`response_seconds`: httpx's timeout
        bounds each read, so a server sending a byte every few seconds held a fetch for ever.
        Too slow is a ReadTimeout, asked again like any timeout. (httpx has no total timeout.)
        The answer is handed on decoded, without the headers of its encoding."""
        deadline = self.clock() + self.response_seconds
        with self._http.stream("GET", url) as response:
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if self.clock() > deadline:
                    raise httpx.ReadTimeout(
                        f"the answer took more than {self.response_seconds:.0f} s",
                        request=response.request,
                    )
        encoding = ("content-encoding", "content-length", "transfer-encoding")
        headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in encoding]
        return httpx.Response(
            response.status_code,
            headers=headers,
            content=bytes(body),
            request=response.request,
            extensions=response.extensions,
        )

    def _gave_up(self, what: str, exc: RetryableResponse, budget: _Budget) -> str:
        """The one line for an answer that stayed bad until the budget (or the cap) ran out."""
        if budget.stopped_by == "retry_after":
            return (
                f"OpenF1 {what}: {exc} asks to wait {exc.retry_after:.0f} s (Retry-After), more "
                f"than the {budget.left():.0f} s left of the {self.retry_seconds:g} s retry "
                f"budget: try again later, raise OPENF1_RETRY_SECONDS, or {OFFLINE_HINT}"
            )
        tried = f"failed after {budget.tries} attempts: {exc} (for {budget.spent():.0f} s)"
        if exc.status is not None and exc.status >= 500:
            return (
                f"OpenF1 is failing (HTTP {exc.status}): {what} {tried}: try again later, "
                f"or {OFFLINE_HINT}"
            )
        if exc.status == 429:
            return (
                f"OpenF1 {what} {tried}: OpenF1 keeps throttling; try again later, lower "
                f"OPENF1_RATE_LIMIT, or {OFFLINE_HINT}"
            )
        if exc.status in (401, 403):  # a live session, and OpenF1 refused our token too
            return (
                f"OpenF1 {what} {tried}: retry after the live session ends, check the "
                f"OPENF1_USERNAME account's access, or {OFFLINE_HINT}"
            )
        if exc.status is None and "Rate exceeded" not in str(exc):
            # A 200 that is not OpenF1's JSON list, every time: most often a URL that is not
            # OpenF1's API (its web site, a proxy's page), which waiting does not mend.
            return (
                f"OpenF1 {what} {tried}: is {self.base_url} OpenF1's API? check --openf1-url / "
                f"OPENF1_URL, try again later, or {OFFLINE_HINT}"
            )
        return f"OpenF1 {what} {tried}: try again later, or {OFFLINE_HINT}"

    # -- the public calls --------------------------------------------------------------------------
    def fetch(self, endpoint: str, season: int, params: Params | None = None) -> FetchResult:
        """One season of ``meetings`` or ``sessions`` (``?year=season`` plus ``params``)."""
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown OpenF1 endpoint {endpoint!r}: use fetch_where")
        pairs = [("year", season), *_pairs(params)]
        return self._fetch(endpoint, season, pairs, f"{endpoint} for {season}")

    def fetch_where(self, endpoint: str, label_season: int, params: Params) -> FetchResult:
        """Records of any endpoint matching ``params``, with OpenF1's operators: e.g.
        ``fetch_where("session_result", 2024, {"meeting_key>=": 1229, "meeting_key<=": 1252})``
        asks for ``/v1/session_result?meeting_key>=1229&meeting_key<=1252`` (sent as
        ``meeting_key%3E=1229&meeting_key%3C=1252``, see :func:`build_query`). ``label_season``
        is the season the result is filed under (FetchResult.season) and named in errors;
        ``404 No results found.`` is an empty result."""
        if not re.fullmatch(r"[a-z_]+", endpoint):
            raise ValueError(f"not an OpenF1 endpoint: {endpoint!r}")
        pairs = _pairs(params)
        what = f"{endpoint} for {label_season} ({_describe(pairs)})"
        return self._fetch(endpoint, label_season, pairs, what)

    def _fetch(self, endpoint: str, season: int, params: Params, what: str) -> FetchResult:
        query = build_query(params)
        before = self.requests_made
        status, records = self._request(what, f"/{endpoint}", query)
        url = httpx.URL(f"{self.base_url}/{endpoint}" + (f"?{query}" if query else ""))
        return FetchResult(
            endpoint, season, self._safe(url), status, records, self.requests_made - before
        )

    def fetch_session(self, endpoint: str, season: int, session_key: int) -> FetchResult:
        """One session of a race-data endpoint: ``/v1/laps?session_key=9606``, one request
        (retries aside) whatever the number of drivers or laps."""
        if endpoints.get(endpoint).fetch is not endpoints.Fetch.SESSION:
            raise ValueError(f"{endpoint} is not fetched per session")
        pairs = [("session_key", session_key)]
        fetched = self._fetch(endpoint, season, pairs, f"{endpoint} of session {session_key}")
        fetched.session_key = session_key
        return fetched

    def query(self, endpoint: str, **params) -> list:
        """Records of ``endpoint`` matching ``params`` (e.g. ``meeting_key=1229``), retried
        like :meth:`fetch`; RacemapError when it fails."""
        what = f"{endpoint} where {_describe(params)}"
        return self._request(what, f"/{endpoint}", build_query(params))[1]


def _sent_a_token(response: httpx.Response) -> bool:
    return response.request.headers.get("authorization", "").lower().startswith("bearer ")


def interpret(response: httpx.Response, secrets: Iterable[str] = ()) -> tuple[int, list]:
    """(status, records) of an answer; RetryableResponse when asking again may help. An error's
    detail is shown without ``secrets`` (the password, the token).

    Only a 200 whose body is a JSON list, or the 404 "No results found." of an empty answer,
    yields records: an HTML page or truncated JSON must never pass for an empty season.
    """
    status = response.status_code
    path = response.request.url.path
    if status in RETRY_STATUSES:
        raise RetryableResponse(
            f"HTTP {status}", parse_retry_after(response.headers.get("retry-after")), status
        )
    if status == 404:
        if "no results" in detail_of(response).lower():
            return status, []
        raise RacemapError(f"OpenF1 answered 404 for {path}: is the OpenF1 URL right?")
    if status != 200:
        detail = detail_of(response, secrets, limit=200)
        if LIVE_SESSION_DETAIL in detail.lower():
            if _sent_a_token(response):
                raise RetryableResponse(
                    f"HTTP {status} saying a live session is in progress, token sent", None, status
                )
            raise RacemapError(
                f"OpenF1 refuses anonymous requests while a live F1 session runs (HTTP {status} "
                f"for {path}): retry after the session ends, {OFFLINE_HINT}, or set "
                "OPENF1_USERNAME/OPENF1_PASSWORD"
            )
        if "rate exceeded" in response.text[:200].lower():
            raise RetryableResponse(f"HTTP {status} saying 'Rate exceeded'", None, 429)
        then = (
            "check OPENF1_USERNAME / OPENF1_PASSWORD (or unset them)"
            if status in (401, 403)
            else "check --openf1-url / OPENF1_URL, try again later"
        )
        raise RacemapError(
            f"OpenF1 answered HTTP {status} for {path}"
            + (f": {' '.join(detail.split())}" if detail else "")
            + f": {then}, or {OFFLINE_HINT}"
        )
    try:
        body = response.json()
    except ValueError:
        # Production throttling has been seen as a plain "Rate exceeded" text:
        # https://github.com/br-g/openf1/issues/113, https://github.com/br-g/openf1/issues/186
        throttled = "rate exceeded" in response.text[:200].lower()
        raise RetryableResponse(
            "HTTP 200 saying 'Rate exceeded'" if throttled else "HTTP 200 whose body is not JSON"
        ) from None
    if not isinstance(body, list):
        raise RetryableResponse(f"HTTP 200 whose body is a JSON {type(body).__name__}, not a list")
    return status, body
