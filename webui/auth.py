"""Admin sessions and CSRF protection.

`enclave up` makes a random admin token, prints it once, and hands the dashboard only its
SHA-256. Logging in with the token sets an HttpOnly, SameSite=Strict cookie; every form that
changes state carries a CSRF token derived from that cookie, checked on submission.
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Request

COOKIE = "enclave_admin"


class Auth:
    def __init__(self, token_sha256: str, secret: bytes) -> None:
        self._token_sha256 = token_sha256
        self._secret = secret

    @property
    def enabled(self) -> bool:
        return bool(self._token_sha256)

    def check_token(self, token: str) -> bool:
        digest = hashlib.sha256(token.encode()).hexdigest()
        return self.enabled and hmac.compare_digest(digest, self._token_sha256)

    def session_value(self) -> str:
        return hmac.new(self._secret, b"admin-session", hashlib.sha256).hexdigest()

    def is_admin(self, request: Request) -> bool:
        cookie = request.cookies.get(COOKIE, "")
        return self.enabled and hmac.compare_digest(cookie, self.session_value())

    def csrf_token(self, request: Request) -> str:
        cookie = request.cookies.get(COOKIE, "")
        return hmac.new(self._secret, b"csrf:" + cookie.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, request: Request, token: str | None) -> bool:
        supplied = token or request.headers.get("x-csrf-token", "")
        return bool(supplied) and hmac.compare_digest(supplied, self.csrf_token(request))
