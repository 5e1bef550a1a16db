"""Plain HTTP to the console as a browser without script would speak it: cookies kept,
redirects not followed, signing in through the login form and its CSRF token."""

from __future__ import annotations

import http.client
import re
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import urlencode

from idlefleet.tokens import Role
from tests.idlefleet.conftest import Tokens


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match is not None
    return match.group(1)


@dataclass
class Answer:
    status: int
    location: str | None
    text: str


@dataclass
class Client:
    """Plain HTTP to the console on `port`, keeping its cookies (no redirects followed)."""

    port: int
    cookies: dict[str, str] = field(default_factory=dict)

    def request(
        self,
        method: str,
        path: str,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {
            "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()),
            **(headers or {}),
        }
        body = None
        if form is not None:
            body = urlencode(form, doseq=True)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, path, body, headers)
        response = connection.getresponse()
        for header in response.headers.get_all("Set-Cookie") or ():
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        answer = Answer(response.status, response.getheader("Location"), response.read().decode())
        connection.close()
        return answer


def signed_in(port: int, tokens: Tokens, role: Role) -> Client:
    client = Client(port)
    login = client.request("GET", "/login")
    token = tokens.by_role[role]
    answer = client.request("POST", "/login", {"token": token, "csrf": csrf_of(login.text)})
    assert answer.status == 303
    return client
