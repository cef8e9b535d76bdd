"""OpenF1 credentials and its OAuth2 tokens: an httpx auth flow (``OpenF1Token``) that fetches a
bearer token from ``OPENF1_USERNAME`` / ``OPENF1_PASSWORD``, renews it before it expires and on a
401, and never lets the password or the token into a log line or an error
(https://openf1.org/auth.html).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

import httpx

from racemap.errors import RacemapError
from racemap.openf1.http import RETRY_STATUSES, RetryableResponse, detail_of, parse_retry_after

log = logging.getLogger(__name__)


def token_url_for(base_url: str) -> str:
    """OpenF1's token endpoint is at the host root, beside ``/v1``: ``https://api.openf1.org/token``
    (https://openf1.org/auth.html). A base URL under a prefix keeps the prefix."""
    url = httpx.URL(base_url)
    path = url.path.rstrip("/").removesuffix("/v1")
    return str(url.copy_with(path=f"{path}/token", query=None, username=None, password=None))


# -- OAuth2 ---------------------------------------------------------------------------------------
class OpenF1Token(httpx.Auth):
    """OAuth2 password grant for OpenF1, as an httpx auth flow.

    ``POST <host>/token`` with form fields ``username`` and ``password`` answers
    ``{"access_token": ..., "expires_in": "3600", "token_type": "bearer"}`` (``expires_in`` is a
    string in https://openf1.org/auth.html); requests then carry ``Authorization: Bearer <token>``.
    The token is fetched before the first request, renewed ``margin`` seconds before it expires,
    and renewed once more when OpenF1 answers 401 to a request that carried it.

    Neither the password nor the token is in ``repr``, a log line or an exception message. One
    client is used by one thread at a time (the loader's case); two threads renewing at once would
    merely fetch two tokens.
    """

    requires_response_body = True  # the token is in the body; 401 details are read too

    def __init__(
        self,
        username: str,
        password: str,
        token_url: str,
        clock: Callable[[], float] = time.monotonic,
        margin: float = 60.0,
    ):
        self.token_url = token_url
        self._form = {"username": username, "password": password}
        self._clock = clock
        self.margin = margin
        self._token: str | None = None
        self._renew_at = 0.0
        self.tokens_fetched = 0

    def __repr__(self) -> str:
        return f"OpenF1Token(token_url={self.token_url!r}, tokens_fetched={self.tokens_fetched})"

    def secrets(self) -> list[str]:
        """What must never be shown: the account (the contract counts ``OPENF1_USERNAME`` among
        the secrets: it is often an e-mail address), the password and the current token."""
        return [s for s in (self._form["username"], self._form["password"], self._token) if s]

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        if self._token is None or self._clock() >= self._renew_at:
            yield from self._renew()
        request.headers["Authorization"] = f"Bearer {self._token}"
        response = yield request
        if response.status_code == 401:  # revoked or expired early: one new token, one retry
            yield from self._renew()
            request.headers["Authorization"] = f"Bearer {self._token}"
            yield request

    def _renew(self) -> Iterator[httpx.Request]:
        response = yield httpx.Request(
            "POST",
            self.token_url,
            data=self._form,
            headers={"accept": "application/json", "user-agent": "racemap"},
        )
        self._token = None
        token, expires_in = self._read(response)
        self._token = token
        self.tokens_fetched += 1
        self._renew_at = self._clock() + expires_in - min(self.margin, expires_in / 2)

    def _read(self, response: httpx.Response) -> tuple[str, float]:
        """(token, seconds it lasts) of the token endpoint's answer, or the one line why not."""
        status = response.status_code
        detail = detail_of(response, self.secrets(), limit=200)
        if status in RETRY_STATUSES:
            raise RetryableResponse(
                f"HTTP {status} from the token endpoint",
                parse_retry_after(response.headers.get("retry-after")),
                status,
            )
        if status in (400, 401, 403, 422):
            raise RacemapError(
                "OpenF1 refused the credentials in OPENF1_USERNAME/OPENF1_PASSWORD: "
                f"HTTP {status}" + (f" {detail}" if detail else "") + "; check them, or unset "
                "both for anonymous access"
            )
        if status != 200:
            raise RacemapError(
                f"OpenF1's token endpoint {self.token_url} answered HTTP {status}: "
                "unset OPENF1_USERNAME/OPENF1_PASSWORD for an OpenF1 without authentication"
            )
        try:
            body = response.json()
        except ValueError:
            body = None
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise RetryableResponse("HTTP 200 from the token endpoint without an access_token")
        try:
            expires_in = float(body.get("expires_in"))
        except (TypeError, ValueError):
            expires_in = 3600.0  # "Tokens expire after 1 hour" (https://openf1.org/auth.html)
        return token, max(expires_in, 1.0)
