"""Admin sessions and CSRF protection.

`enclave up` makes a random admin token, prints it once, and hands the dashboard only its
SHA-256. Logging in with the token starts a session: a fresh random session token
(`secrets.token_urlsafe(32)`) goes to the browser in an HttpOnly, SameSite=Strict cookie whose
Max-Age is the session's lifetime, and the dashboard keeps, in memory, only the token's SHA-256
and when the session ends.

Expiry is absolute: a session ends `session_ttl` seconds after its login, however busy it is,
and the admin logs in again. Logging out revokes the session at once; an unknown, expired or
revoked cookie is simply not an admin's. Sessions live in this process only, so a restart ends
them all. At most `max_sessions` are live: a new login beyond that drops the oldest.

Every form that changes state carries a CSRF token derived, with the server secret, from the
session token, and checked on submission: a CSRF token is good for its own session only.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from fastapi import Request

COOKIE = "enclave_admin"
SESSION_TTL = 12 * 3600
MAX_SESSIONS = 1000


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Auth:
    def __init__(
        self,
        token_sha256: str,
        secret: bytes,
        session_ttl: int = SESSION_TTL,
        max_sessions: int = MAX_SESSIONS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if session_ttl < 1:
            # The cookie's Max-Age is whole seconds; 0 would tell the browser to drop it at once.
            raise ValueError("session_ttl must be at least 1 second")
        if max_sessions < 1:
            raise ValueError("max_sessions must be at least 1")
        self._token_sha256 = token_sha256
        self._secret = secret
        self.session_ttl = session_ttl
        self._max_sessions = max_sessions
        self._clock = clock
        # SHA-256 of each live session token -> when it expires. Expiry is absolute and the clock
        # monotonic, so insertion order is also expiry order: the oldest and the first to expire
        # are both at the front.
        self._sessions: OrderedDict[str, float] = OrderedDict()
        # Sync routes run in a thread pool while the middleware runs on the event loop.
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return bool(self._token_sha256)

    def check_token(self, token: str) -> bool:
        return self.enabled and hmac.compare_digest(_digest(token), self._token_sha256)

    def start_session(self) -> str:
        """A new session's token, for the cookie; only its digest stays here."""
        token = secrets.token_urlsafe(32)
        now = self._clock()
        with self._lock:
            self._drop_expired(now)
            while len(self._sessions) >= self._max_sessions:
                self._sessions.popitem(last=False)
            self._sessions[_digest(token)] = now + self.session_ttl
        return token

    def end_session(self, request: Request) -> None:
        cookie = request.cookies.get(COOKIE, "")
        if cookie:
            with self._lock:
                self._sessions.pop(_digest(cookie), None)

    def live_sessions(self) -> int:
        with self._lock:
            self._drop_expired(self._clock())
            return len(self._sessions)

    def is_admin(self, request: Request) -> bool:
        cookie = request.cookies.get(COOKIE, "")
        if not (self.enabled and cookie):
            return False
        # Looking up the digest, not the token, is why a plain dict lookup is safe here: its
        # timing can at most reveal a prefix of a SHA-256, which does not lead back to a token.
        key = _digest(cookie)
        now = self._clock()
        with self._lock:
            expires = self._sessions.get(key)
            if expires is None:
                return False
            if now >= expires:
                del self._sessions[key]
                return False
            return True

    def csrf_token(self, request: Request) -> str:
        cookie = request.cookies.get(COOKIE, "")
        return hmac.new(self._secret, b"csrf:" + cookie.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, request: Request, token: str | None) -> bool:
        supplied = token or request.headers.get("x-csrf-token", "")
        if not (supplied and request.cookies.get(COOKIE)):
            return False
        # As bytes: compare_digest refuses non-ASCII str, and the token comes from the client.
        return hmac.compare_digest(supplied.encode(), self.csrf_token(request).encode())

    def _drop_expired(self, now: float) -> None:
        while self._sessions:
            key, expires = next(iter(self._sessions.items()))
            if now < expires:
                break
            del self._sessions[key]
