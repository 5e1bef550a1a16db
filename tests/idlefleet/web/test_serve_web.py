"""`idlefleet serve --web-port P`: options checked before anything starts, and the console
served beside the service and the gRPC API, signing in with the API's token file (plain
HTTP from the test: the browser tests are in test_console_browser.py)."""

from __future__ import annotations

import http.client
import os
import re
import secrets
import signal
import socket
import subprocess
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import pytest

from idlefleet.cli import main
from idlefleet.commands import EXIT_BAD_INPUT
from tests.idlefleet.test_serve import IDLEFLEET, Lines


@pytest.fixture
def token_file(tmp_path: Path) -> tuple[Path, str]:
    viewer = secrets.token_urlsafe(16)
    path = tmp_path / "tokens"
    path.write_text(f"{viewer} viewer tester\n")
    return path, viewer


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--web-port", "70000"], "--web-port must be 0 (off) or a port 1-65535"),
        (["--web-port", "8080", "--web-host", "0.0.0.0"], "only over TLS"),
    ],
)
def test_bad_console_options_are_refused_before_anything_starts(
    options: list[str],
    message: str,
    token_file: tuple[Path, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, _ = token_file
    args = ["serve", "--grpc-port", "0", "--tokens", str(path), *options]
    assert main(args) == EXIT_BAD_INPUT
    assert message in capsys.readouterr().err


def test_the_console_needs_the_api_tokens(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["serve", "--bootstrap-servers", "127.0.0.1:1", "--web-port", "8080"]
    assert main(args) == EXIT_BAD_INPUT
    assert "--web-port needs --grpc-port and --tokens" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _request(
    port: int, method: str, path: str, body: str | None = None, cookies: str = ""
) -> tuple[int, dict[str, str], str]:
    """One request, redirects not followed: status, headers (lower-case names), body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Cookie": cookies} if cookies else {}
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        text = response.read().decode()
        names = {name.lower(): value for name, value in response.getheaders()}
        names["set-cookie"] = "\n".join(response.headers.get_all("set-cookie") or [])
        return response.status, names, text
    finally:
        connection.close()


def _cookies(headers: dict[str, str]) -> SimpleCookie:
    jar: SimpleCookie = SimpleCookie()
    for line in headers["set-cookie"].splitlines():
        jar.load(line)
    return jar


def test_serve_offers_the_console_beside_the_api(
    tmp_path: Path, token_file: tuple[Path, str]
) -> None:
    path, viewer = token_file
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDLEFLEET_")}
    env["IDLEFLEET_STATE_DIR"] = str(tmp_path / "state")
    command = [*IDLEFLEET, "serve", "--clock-speed", "600", "--grpc-port", "0"]
    command += ["--tokens", str(path), "--web-port", str(port)]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as process:
        try:
            lines = Lines(process)
            lines.until(f"web console on http://127.0.0.1:{port}/")
            lines.until("plan at ")

            status, headers, _ = _request(port, "GET", "/fleet")
            assert (status, headers["location"]) == (303, "/login")
            status, headers, page = _request(port, "GET", "/login")
            assert status == 200
            assert "default-src 'self'" in headers["content-security-policy"]
            login = _cookies(headers)["idlefleet_login_csrf"]
            assert "HttpOnly" in headers["set-cookie"]
            assert "SameSite=strict" in headers["set-cookie"]
            found = re.search(r'name="csrf" value="([^"]+)"', page)
            assert found is not None
            csrf = found.group(1)

            form = urlencode({"token": viewer})  # no CSRF token: refused
            status, _, _ = _request(
                port, "POST", "/login", form, f"idlefleet_login_csrf={login.value}"
            )
            assert status == 400
            form = urlencode({"token": viewer, "csrf": csrf})
            status, headers, _ = _request(
                port, "POST", "/login", form, f"idlefleet_login_csrf={login.value}"
            )
            assert (status, headers["location"]) == (303, "/fleet")
            session = _cookies(headers)["idlefleet_session"].value
            status, _, page = _request(
                port, "GET", "/fleet", cookies=f"idlefleet_session={session}"
            )
            assert status == 200
            assert "berlin-depot" in page and "london-depot" in page
            status, _, page = _request(
                port, "GET", "/health", cookies=f"idlefleet_session={session}"
            )
            assert status == 200 and 'id="dead-letters"' in page

            forged = session[:-2] + ("AA" if not session.endswith("AA") else "BB")
            status, headers, _ = _request(
                port, "GET", "/fleet", cookies=f"idlefleet_session={forged}"
            )
            assert (status, headers["location"]) == (303, "/login")
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
        finally:
            process.kill()
