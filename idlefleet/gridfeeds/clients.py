"""HTTP clients of the live carbon-intensity feeds: WattTime v3 and Electricity Maps v3.

Each `fetch(feed_region)` returns the body of one forecast answer (JSON, parsed by
`forecasting.feeds`) or raises `FeedUnavailableError` with a short reason: connection refused or
timed out, HTTP 429 (with its Retry-After) or 5xx, credentials refused, an answer over
`MAX_BODY_BYTES`. Requests go through urllib3 with no retries of its own (the poller
decides when to try again) and no redirects.

Secrets (WattTime's password and bearer token, the Electricity Maps key) travel only in
request headers; they are never logged, and a reason quoting an answer has them blanked.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Protocol

import urllib3
from urllib3.exceptions import HTTPError

from idlefleet.settings import ElectricityMapsSettings, WattTimeSettings

#: Largest answer read [bytes]; a forecast of 72 h at 5 min is about 30 kB.
MAX_BODY_BYTES = 4 * 1024 * 1024
#: What a reason shows of an error answer's body [characters].
BODY_EXCERPT = 160
REDACTED = "**********"
#: WattTime's average (location-based) signal; `co2_moer` is marginal and never planned on.
WATTTIME_AVERAGE_SIGNAL = "co2_aoer"


class FeedUnavailableError(Exception):
    """The feed gave no usable answer this time; `reason` says why, without secrets."""

    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


class _RefusedError(FeedUnavailableError):
    """HTTP 401 or 403: the credentials (or the token made from them) were refused."""


class FeedClient(Protocol):
    """One live feed: its name in `forecasting.feeds.VARIABLE_MAP`, and a forecast fetch."""

    name: str

    def fetch(self, feed_region: str, horizon_hours: int) -> bytes:
        """The body of the feed's forecast for `feed_region`; FeedUnavailableError otherwise."""
        ...

    def close(self) -> None: ...


def _pool(timeout_s: float) -> urllib3.PoolManager:
    return urllib3.PoolManager(
        num_pools=4,
        timeout=urllib3.Timeout(total=timeout_s),
        retries=False,
        headers={"Accept": "application/json", "User-Agent": "idlefleet"},
    )


def _get(
    http: urllib3.PoolManager,
    url: str,
    headers: Mapping[str, str],
    fields: Mapping[str, str] | None,
    secrets: Iterable[str],
    what: str,
) -> bytes:
    """The body of a 200 answer to GET `url`; FeedUnavailableError (or _RefusedError) otherwise."""
    try:
        response = http.request(
            "GET", url, fields=fields, headers=dict(headers), redirect=False, preload_content=False
        )
    except HTTPError as exc:
        raise FeedUnavailableError(f"{what}: {_connection_reason(exc)}") from exc
    try:
        body = response.read(MAX_BODY_BYTES + 1)
    except HTTPError as exc:
        raise FeedUnavailableError(f"{what}: answer cut short ({type(exc).__name__})") from exc
    finally:
        response.release_conn()
    status = response.status
    if status == 200:
        if len(body) > MAX_BODY_BYTES:
            raise FeedUnavailableError(f"{what}: answer over {MAX_BODY_BYTES} bytes")
        return bytes(body)
    excerpt = _redact(body[:BODY_EXCERPT].decode("utf-8", "replace").strip(), secrets)
    reason = f"{what}: HTTP {status}" + (f" {excerpt!r}" if excerpt else "")
    if status in (401, 403):
        raise _RefusedError(reason)
    retry_after = _retry_after_s(response.headers.get("Retry-After"))
    raise FeedUnavailableError(reason, retry_after if status in (429, 503) else None)


def _connection_reason(exc: HTTPError) -> str:
    """A short reason for a failed request, e.g. 'cannot connect: [Errno 111] Connection
    refused' (urllib3's messages quote connection objects)."""
    cause: BaseException = exc
    while isinstance(inner := getattr(cause, "reason", None), BaseException):
        cause = inner  # MaxRetryError wraps the error of the attempt
    text = str(cause)
    if ": " in text and text.startswith("<"):
        text = text.split(": ", 1)[1]  # drop the connection object's repr
    kind = {
        "NewConnectionError": "cannot connect",
        "ConnectTimeoutError": "connecting timed out",
        "ReadTimeoutError": "no answer in time",
        "ProtocolError": "connection broken",
        "SSLError": "TLS failed",
    }.get(type(cause).__name__, type(cause).__name__)
    return f"{kind}: {text}" if text else kind


def _retry_after_s(value: str | None) -> float | None:
    """Retry-After given in seconds, or None (an HTTP date is ignored: backoff applies)."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 <= seconds < 86_400 else None


def _redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


class WattTimeClient:
    """WattTime API v3: GET `/login` with HTTP basic auth gives a bearer token (valid 30
    minutes, renewed when refused), then GET `/v3/forecast?region=…&signal_type=co2_aoer`."""

    name = "watttime"

    def __init__(self, settings: WattTimeSettings) -> None:
        if not settings.configured:
            raise ValueError("WattTime needs IDLEFLEET_WATTTIME_USERNAME and _PASSWORD")
        self._settings = settings
        self._http = _pool(settings.timeout_s)
        self._token: str | None = None

    def _secrets(self) -> list[str]:
        password = self._settings.password
        return [self._token or "", "" if password is None else password.get_secret_value()]

    def _login(self) -> str:
        settings = self._settings
        assert settings.username is not None and settings.password is not None
        credentials = f"{settings.username}:{settings.password.get_secret_value()}"
        header = urllib3.make_headers(basic_auth=credentials)
        try:
            body = _get(
                self._http,
                f"{settings.url.rstrip('/')}/login",
                header,
                None,
                [*self._secrets(), header["authorization"].removeprefix("Basic ")],
                "watttime login",
            )
        except _RefusedError as exc:
            raise FeedUnavailableError(
                f"{exc.reason}: check IDLEFLEET_WATTTIME_USERNAME and _PASSWORD"
            ) from exc
        try:
            token = json.loads(body).get("token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise FeedUnavailableError("watttime login: the answer holds no token")
        return token

    def fetch(self, feed_region: str, horizon_hours: int) -> bytes:
        if self._token is None:
            self._token = self._login()
        try:
            return self._forecast(feed_region, horizon_hours)
        except _RefusedError:
            self._token = self._login()  # expired: once more with a new token
            try:
                return self._forecast(feed_region, horizon_hours)
            except _RefusedError as exc:
                raise FeedUnavailableError(
                    f"{exc.reason}: the account may lack {WATTTIME_AVERAGE_SIGNAL} "
                    f"for {feed_region}"
                ) from exc

    def _forecast(self, feed_region: str, horizon_hours: int) -> bytes:
        return _get(
            self._http,
            f"{self._settings.url.rstrip('/')}/v3/forecast",
            {"Authorization": f"Bearer {self._token}"},
            {
                "region": feed_region,
                "signal_type": WATTTIME_AVERAGE_SIGNAL,
                "horizon_hours": str(max(1, min(72, horizon_hours))),
            },
            self._secrets(),
            "watttime forecast",
        )

    def close(self) -> None:
        self._http.clear()


class ElectricityMapsClient:
    """Electricity Maps API v3: GET `/v3/carbon-intensity/forecast?zone=…` with the key in
    the `auth-token` header (lifecycle average intensity)."""

    name = "electricitymaps"

    def __init__(self, settings: ElectricityMapsSettings) -> None:
        if not settings.configured or settings.api_key is None:
            raise ValueError("Electricity Maps needs IDLEFLEET_ELECTRICITYMAPS_API_KEY")
        self._settings = settings
        self._key = settings.api_key
        self._http = _pool(settings.timeout_s)

    def fetch(self, feed_region: str, horizon_hours: int) -> bytes:
        key = self._key.get_secret_value()
        try:
            return _get(
                self._http,
                f"{self._settings.url.rstrip('/')}/v3/carbon-intensity/forecast",
                {"auth-token": key},
                {"zone": feed_region},
                [key],
                "electricitymaps forecast",
            )
        except _RefusedError as exc:
            raise FeedUnavailableError(
                f"{exc.reason}: check IDLEFLEET_ELECTRICITYMAPS_API_KEY and the plan's zones"
            ) from exc

    def close(self) -> None:
        self._http.clear()
