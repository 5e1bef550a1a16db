"""A real HTTP server on loopback that answers like WattTime v3 and Electricity Maps v3.

`/login` wants HTTP basic auth and gives a bearer token; `/v3/forecast` wants that token;
`/v3/carbon-intensity/forecast` wants the `auth-token` header. Answers to the forecast paths
come from `answers` (one per request, in order) and then `default`; each request is kept in
`requests`. `stop` closes the port (connection refused) and `start` opens it again.
"""

from __future__ import annotations

import base64
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

USERNAME = "fleet-ops"
PASSWORD = "pw-Zq8!never-in-logs"
API_KEY = "em-key-never-in-logs-5d1c"


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


def json_answer(doc: Any, status: int = 200, **headers: str) -> Answer:
    return Answer(status, json.dumps(doc).encode(), tuple(headers.items()))


def watttime_doc(
    start: datetime, hours: float, value: float = 1000.0, signal: str = "co2_aoer"
) -> dict[str, Any]:
    """5-minute points from `start`: `value` lbs/MWh, rising by 1 each point."""
    points = int(hours * 12)
    return {
        "meta": {
            "region": "DE",
            "signal_type": signal,
            "units": "lbs_co2_per_mwh",
            "data_point_period_seconds": 300,
            "generated_at": start.isoformat(),
        },
        "data": [
            {"point_time": (start + i * timedelta(minutes=5)).isoformat(), "value": value + i}
            for i in range(points)
        ],
    }


def electricitymaps_doc(start: datetime, hours: int, value: float = 300.0) -> dict[str, Any]:
    """Hourly points from `start`: `value` gCO2eq/kWh, rising by 10 each hour."""
    return {
        "zone": "DE",
        "forecast": [
            {
                "carbonIntensity": value + 10 * i,
                "datetime": (start + timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "emissionFactorType": "lifecycle",
            }
            for i in range(hours)
        ],
        "updatedAt": start.isoformat(),
    }


#: An answer whose body quotes the request's headers, credentials included (as some proxies
#: and debugging endpoints do).
ECHO_HEADERS = Answer(400, b"@echo-headers")


@dataclass
class Request:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


@dataclass
class FeedServer:
    answers: deque[Answer] = field(default_factory=deque)
    default: Answer = field(default_factory=lambda: Answer(404, b"{}"))
    requests: list[Request] = field(default_factory=list)
    token: str = "tok-1-never-in-logs"
    logins: int = 0
    port: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FeedServer:
        feed = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                feed._handle(self)

            def log_message(self, format: str, *args: object) -> None:
                pass  # quiet

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, name="feed-server", daemon=True).start()
        return self

    def stop(self) -> None:
        """Close the port: the next connection is refused."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def rotate_token(self) -> None:
        """The old token expires: using it gets 401 until the client logs in again."""
        self.token = f"tok-{self.logins + 2}-never-in-logs"

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlsplit(handler.path)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        with self._lock:
            self.requests.append(Request(url.path, parse_qs(url.query), headers))
        if url.path == "/login":
            expected = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
            if headers.get("authorization") != f"Basic {expected}":
                body = json.dumps({"error": "bad credentials", "got": headers}).encode()
                return self._send(handler, Answer(401, body))
            with self._lock:
                self.logins += 1
            return self._send(handler, json_answer({"token": self.token}))
        if url.path == "/v3/forecast":
            if headers.get("authorization") != f"Bearer {self.token}":
                return self._send(handler, Answer(401, b'{"error": "token expired"}'))
        elif url.path == "/v3/carbon-intensity/forecast":
            if headers.get("auth-token") != API_KEY:
                return self._send(handler, Answer(401, b'{"error": "bad key"}'))
        else:
            return self._send(handler, Answer(404, b"{}"))
        with self._lock:
            answer = self.answers.popleft() if self.answers else self.default
        if answer.body == ECHO_HEADERS.body:
            answer = Answer(answer.status, json.dumps({"your_headers": headers}).encode())
        self._send(handler, answer)

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, answer: Answer) -> None:
        handler.send_response(answer.status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(answer.body)))
        for name, value in answer.headers:
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(answer.body)
