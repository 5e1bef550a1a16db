"""Signed session cookies: a session reads back as made, and a forged, foreign, expired or
mangled cookie reads as none."""

from __future__ import annotations

import time

import pytest

from idlefleet.tokens import Principal, Role
from idlefleet.web.sessions import SessionSigner

VIEWER = Principal("tester", Role.VIEWER)


def test_a_session_reads_back_with_its_csrf_token() -> None:
    signer = SessionSigner(b"k" * 32)
    made, cookie = signer.new_session(VIEWER)
    read = signer.session(cookie)
    assert read == made
    assert read.role is Role.VIEWER and read.name == "tester"
    assert read.csrf_matches(made.csrf)
    assert not read.csrf_matches("other") and not read.csrf_matches(None)


def test_an_owner_session_keeps_its_car() -> None:
    signer = SessionSigner()
    made, cookie = signer.new_session(Principal("o", Role.OWNER, "car-7"))
    assert signer.session(cookie) == made and made.vehicle_id == "car-7"


@pytest.mark.parametrize("cookie", [None, "", "garbage", "a.b.c"])
def test_missing_or_mangled_cookies_are_no_session(cookie: str | None) -> None:
    assert SessionSigner().session(cookie) is None


def test_another_key_or_a_changed_payload_is_no_session() -> None:
    _, cookie = SessionSigner(b"a" * 32).new_session(VIEWER)
    assert SessionSigner(b"b" * 32).session(cookie) is None
    payload, _, rest = cookie.partition(".")
    assert SessionSigner(b"a" * 32).session(payload[:-1] + "x." + rest) is None


def test_sessions_expire() -> None:
    signer = SessionSigner(b"k" * 32, max_age_s=1)
    _, cookie = signer.new_session(VIEWER)
    time.sleep(2.1)  # itsdangerous stamps whole seconds
    assert signer.session(cookie) is None


def test_the_login_form_token_must_match_its_cookie() -> None:
    signer = SessionSigner()
    token, cookie = signer.login_csrf()
    assert signer.login_csrf_matches(cookie, token)
    other, _ = signer.login_csrf()
    assert not signer.login_csrf_matches(cookie, other)
    assert not signer.login_csrf_matches(None, token)
    assert not signer.login_csrf_matches(cookie, None)
    assert not SessionSigner().login_csrf_matches(cookie, token)


def test_a_session_lifetime_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max age must be above 0"):
        SessionSigner(max_age_s=0)
