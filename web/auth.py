"""Who is asking: a visitor session, the moderator (token cookie, Bearer, or the local user on
a loopback host without a token), and the CSRF token every state-changing form carries."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from imagebot.providers.base import ConfigError

SESSION_COOKIE = "ib_session"
MODERATOR_COOKIE = "ib_moderator"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
SECRET_FILE = ".web-secret"  # in the archive root: CSRF tokens survive a restart
SESSION_MAX_AGE = 365 * 24 * 3600


def is_loopback(host: str) -> bool:
    """Whether `host` (what the server binds to) is reachable from this machine only."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, token: str | None) -> None:
    """The one-line refusal to serve a non-loopback address without a moderator token."""
    if not token and not is_loopback(host):
        raise ConfigError(
            f"IMAGEBOT_WEB_TOKEN is not set; it is required to serve the web app on {host!r}, "
            "which is not a loopback address (set a token, or use IMAGEBOT_WEB_HOST=127.0.0.1)"
        )


def load_secret(root: Path) -> bytes:
    """The server's signing key, made once per archive (readable by its owner only)."""
    path = root / SECRET_FILE
    try:
        data = path.read_bytes()
        if len(data) >= 32:
            return data
    except OSError:
        pass
    root.mkdir(parents=True, exist_ok=True)
    data = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as stream:
        stream.write(data)
    return data


@dataclass(frozen=True)
class Visitor:
    """One browser: its session id (the cookie, kept secret) and whether it moderates."""

    session: str
    moderator: bool
    bearer: bool = False  # signed in by header: no cookie, so no CSRF to fear

    @property
    def public_id(self) -> str:
        """The id the index and the chat see: derived, so the cookie never leaves the browser."""
        return hashlib.sha256(f"web:{self.session}".encode()).hexdigest()[:16]


# Where each request keeps its Visitor (a typed key where aiohttp offers one).
VISITOR: Any = web.RequestKey("visitor", Visitor) if hasattr(web, "RequestKey") else "visitor"


class Auth:
    """Signs and checks the moderator cookie and the CSRF tokens of one running app."""

    def __init__(self, secret: bytes, token: str | None, host: str) -> None:
        self.secret = secret
        self.token = token or None
        # No token on a loopback host: whoever can reach it is the local user, the moderator.
        self.open = self.token is None and is_loopback(host)

    def _sign(self, what: str) -> str:
        return hmac.new(self.secret, what.encode(), hashlib.sha256).hexdigest()

    def moderator_cookie(self) -> str:
        """The cookie value of a signed-in moderator: bound to the token, never the token."""
        assert self.token is not None
        return self._sign(f"moderator:{self._sign(self.token)}")

    def token_matches(self, offered: str) -> bool:
        return self.token is not None and hmac.compare_digest(offered.encode(), self.token.encode())

    def visitor(self, request: web.Request) -> Visitor:
        """Who sent `request` (a new session id when the browser has none yet)."""
        session = request.cookies.get(SESSION_COOKIE, "")
        if not (len(session) == 32 and all(c in "0123456789abcdef" for c in session)):
            session = secrets.token_hex(16)
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer ") and self.token_matches(header[7:].strip()):
            return Visitor(session, True, bearer=True)
        cookie = request.cookies.get(MODERATOR_COOKIE, "")
        signed = self.token is not None and hmac.compare_digest(
            cookie.encode(), self.moderator_cookie().encode()
        )
        return Visitor(session, self.open or signed)

    def csrf_token(self, visitor: Visitor) -> str:
        return self._sign(f"csrf:{visitor.session}")

    def csrf_ok(self, visitor: Visitor, offered: str | None) -> bool:
        if visitor.bearer:
            return True
        return bool(offered) and hmac.compare_digest(
            str(offered).encode(), self.csrf_token(visitor).encode()
        )


def set_session_cookie(response: web.StreamResponse, request: web.Request, visitor: Visitor):
    """Keep the visitor's session (HttpOnly, SameSite=Lax so links from elsewhere work)."""
    if request.cookies.get(SESSION_COOKIE) != visitor.session:
        response.set_cookie(
            SESSION_COOKIE,
            visitor.session,
            max_age=SESSION_MAX_AGE,
            httponly=True,
            samesite="Lax",
            secure=request.secure,
            path="/",
        )


def set_moderator_cookie(response: web.StreamResponse, request: web.Request, value: str) -> None:
    response.set_cookie(
        MODERATOR_COOKIE,
        value,
        max_age=30 * 24 * 3600,
        httponly=True,
        samesite="Strict",
        secure=request.secure,
        path="/",
    )
