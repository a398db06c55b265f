"""Bad requests answered as one sentence with their status (400/403/404...), never a traceback;
and the headers every response carries."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from imagebot.providers.base import UsageError
from imagebot.web.auth import VISITOR

if TYPE_CHECKING:
    from imagebot.web.site import Site

log = logging.getLogger("imagebot.web")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SENTENCES = {
    400: "That request is not one this site understands.",
    403: "You are not allowed to do that here.",
    404: "There is nothing at this address.",
    405: "This address does not take that kind of request.",
    413: "That request is too large.",
    500: "Something went wrong on the server; please try again later.",
}
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


class Problem(Exception):
    """A request we refuse, with the status and the one sentence the visitor reads."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def not_found(message: str = "There is no such batch in the archive.") -> Problem:
    return Problem(404, message)


def forbidden(message: str) -> Problem:
    return Problem(403, message)


def bad_request(message: str) -> Problem:
    return Problem(400, message)


def redirect(location: str) -> web.Response:
    """303 See Other: after a form, the browser asks for `location` with GET."""
    return web.Response(status=303, headers={"Location": location})


def sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "?", "!")) else text + "."


def error_response(site: Site, request: web.Request, status: int, message: str):
    if "application/json" in request.headers.get("Accept", ""):
        return web.json_response({"error": message}, status=status)
    return site.page(request, "error.html", status=status, status_code=status, message=message)


def middleware(site: Site) -> Callable:
    """Errors as pages, security headers, the visitor's session cookie, server timing."""

    @web.middleware
    async def handle(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        request[VISITOR] = site.auth.visitor(request)
        try:
            response = await handler(request)
        except Problem as problem:
            response = error_response(site, request, problem.status, problem.message)
        except UsageError as exc:
            response = error_response(site, request, 400, sentence(str(exc)))
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            message = SENTENCES.get(exc.status, SENTENCES[400])
            response = error_response(site, request, exc.status, message)
        except Exception:
            log.exception("%s %s failed", request.method, request.path)
            response = error_response(site, request, 500, SENTENCES[500])
        if not response.prepared:  # a stream (SSE) sent its own headers already
            response.headers.update(HEADERS)
            elapsed = (time.perf_counter() - started) * 1000
            response.headers["Server-Timing"] = f"app;dur={elapsed:.2f}"
            site.keep_session(request, response)
        return response

    return handle
