"""Signed session cookies: who signed in with which role, and the CSRF token of their forms.

A session is a cookie signed with the server's key (itsdangerous, HMAC-SHA1 over the
payload, with a timestamp): the console stores nothing. It carries the principal's name,
role and car (owners), and a random CSRF token that every form posts back. Sessions end
after `max_age_s` [s] or when the server restarts with a new key.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

from idlefleet.tokens import Principal, Role

#: How long a session lasts [s]: a working day.
DEFAULT_MAX_AGE_S = 8 * 3600
SESSION_COOKIE = "idlefleet_session"
#: The CSRF token of the login form, before there is a session.
LOGIN_CSRF_COOKIE = "idlefleet_login_csrf"


@dataclass(frozen=True)
class Session:
    """A signed-in principal and the CSRF token its forms carry."""

    name: str
    role: Role
    vehicle_id: str | None
    csrf: str

    def csrf_matches(self, presented: str | None) -> bool:
        """Whether a form's CSRF token is this session's (constant time)."""
        return presented is not None and hmac.compare_digest(presented, self.csrf)


class SessionSigner:
    """Makes and reads session cookies signed with `key` (default: a new random key)."""

    def __init__(self, key: bytes | None = None, max_age_s: int = DEFAULT_MAX_AGE_S) -> None:
        if max_age_s <= 0:
            raise ValueError(f"a session's max age must be above 0 s, got {max_age_s}")
        self.max_age_s = max_age_s
        secret = key if key is not None else secrets.token_bytes(32)
        self._sessions = URLSafeTimedSerializer(secret, salt="idlefleet.web.session")
        self._login = URLSafeTimedSerializer(secret, salt="idlefleet.web.login")

    def new_session(self, principal: Principal) -> tuple[Session, str]:
        """A session for `principal` with a fresh CSRF token, and its cookie value."""
        session = Session(
            principal.name, principal.role, principal.vehicle_id, secrets.token_urlsafe(32)
        )
        payload = [session.name, int(session.role), session.vehicle_id, session.csrf]
        return session, self._sessions.dumps(payload)

    def session(self, cookie: str | None) -> Session | None:
        """The session a cookie carries, or None when absent, forged or expired."""
        if not cookie:
            return None
        try:
            name, role, vehicle_id, csrf = self._sessions.loads(cookie, max_age=self.max_age_s)
            return Session(str(name), Role(int(role)), vehicle_id, str(csrf))
        except (BadSignature, ValueError, TypeError):
            return None

    def login_csrf(self) -> tuple[str, str]:
        """A CSRF token for the login form and the signed cookie that vouches for it."""
        token = secrets.token_urlsafe(32)
        return token, self._login.dumps(token)

    def login_csrf_matches(self, cookie: str | None, presented: str | None) -> bool:
        """Whether the login form's token is the one its cookie vouches for (10 min)."""
        if not cookie or not presented:
            return False
        try:
            expected = self._login.loads(cookie, max_age=600)
        except BadSignature:
            return False
        return isinstance(expected, str) and hmac.compare_digest(expected, presented)
