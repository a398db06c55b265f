"""One mapping of HTTP failures onto ProviderError for every provider, with retries.

401/403 -> NeedsKey; 429, 5xx, time-outs, refused connections -> Unavailable (retried with
back-off honouring Retry-After); content refusals -> Refused; other 4xx -> ProviderError
carrying the server's own message.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

import aiohttp

from imagebot.providers.base import BadResponse, NeedsKey, ProviderError, Refused, Unavailable

T = TypeVar("T")

REFUSAL_MARKERS = (
    "content_policy",
    "content policy",
    "content_moderation",
    "moderation",
    "safety system",
    "corruptprompt",
    "nsfw",
)
MAX_RETRY_WAIT = 60.0


# Anything shaped like an OpenAI-style key, in case a server echoes one we did not send.
KEY_PATTERN = re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_\-]{6,}")


def scrub(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` with every secret (and anything key-shaped) masked."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return KEY_PATTERN.sub("***", text)


def server_message(body: str) -> str:
    """The human part of an error body: OpenAI, Stability, A1111, ComfyUI and Horde shapes."""
    text = body.strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:300] or "no details"
    return _message_from(data) or text[:300]


def _message_from(data: Any) -> str:
    if isinstance(data, str):
        return data
    if isinstance(data, list):
        return "; ".join(filter(None, (_message_from(item) for item in data)))
    if not isinstance(data, dict):
        return ""
    # A1111 puts the exception class in "error" and the words in "detail"; OpenAI nests
    # its words under "error"; so plain words first, then nested shapes.
    for key in ("message", "detail", "errors", "error", "msg", "name"):
        if key in data and data[key]:
            found = _message_from(data[key])
            if found:
                return found
    return ""


def parse_retry_after(headers: Mapping[str, str] | None, body: str = "") -> float | None:
    """Seconds to wait from a Retry-After header (or a JSON `retry_after`)."""
    if headers:
        value = headers.get("Retry-After") or headers.get("retry-after")
        if value:
            try:
                return max(0.0, float(value))
            except ValueError:
                pass
    try:
        data = json.loads(body) if body else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        for holder in (data, data.get("parameters") or {}):
            if isinstance(holder, dict) and isinstance(holder.get("retry_after"), int | float):
                return float(holder["retry_after"])
    return None


def is_refusal(body: str) -> bool:
    lowered = body.lower()
    return any(marker in lowered for marker in REFUSAL_MARKERS)


def error_for_status(
    provider: str, status: int, body: str, headers: Mapping[str, str] | None = None
) -> ProviderError:
    """Turn an HTTP error answer into the right ProviderError."""
    message = server_message(body)
    if status in (400, 403, 422) and is_refusal(body):
        return Refused(provider, f"the prompt was refused: {message}")
    if status in (401, 403):
        return NeedsKey(provider, f"the server refused the key (HTTP {status}): {message}")
    if status == 429:
        return Unavailable(
            provider,
            f"rate limited or out of quota (HTTP 429): {message}",
            retry_after=parse_retry_after(headers, body),
        )
    if status >= 500:
        return Unavailable(
            provider,
            f"the server failed (HTTP {status}): {message}",
            retry_after=parse_retry_after(headers, body),
        )
    if status == 404:
        return ProviderError(provider, f"not found (HTTP 404): {message}; check the server URL")
    return ProviderError(provider, f"HTTP {status}: {message}")


def error_for_exception(provider: str, exc: BaseException) -> ProviderError:
    """Map a transport failure (time-out, refused connection, broken reply)."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return Unavailable(provider, "the server did not answer in time")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return Unavailable(provider, f"cannot connect to {exc.host}:{exc.port}")
    if isinstance(exc, aiohttp.ClientError):
        return Unavailable(provider, f"connection failed: {exc.__class__.__name__}")
    if isinstance(exc, ValueError):
        return BadResponse(provider, f"the server sent an answer we cannot read: {exc}")
    return ProviderError(provider, f"{exc.__class__.__name__}: {exc}")


def backoff_delay(attempt: int, retry_after: float | None, base: float = 0.5) -> float:
    """Retry-After when the server gave one, else exponential back-off with jitter."""
    if retry_after is not None:
        return min(retry_after, MAX_RETRY_WAIT)
    return min(base * (2**attempt) * (1 + random.random() * 0.25), MAX_RETRY_WAIT)


async def with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    attempts: int = 3,
    base_delay: float = 0.5,
) -> T:
    """Run `call`, retrying Unavailable failures with back-off; other errors pass through."""
    for attempt in range(attempts):
        try:
            return await call()
        except Unavailable as exc:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(backoff_delay(attempt, exc.retry_after, base_delay))
    raise AssertionError("unreachable")


async def request_json(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    provider: str,
    timeout: float = 120.0,
    attempts: int = 3,
    **kwargs: Any,
) -> Any:
    """One JSON request with the shared error mapping and retries."""

    async def once() -> Any:
        try:
            async with session.request(
                method, url, timeout=aiohttp.ClientTimeout(total=timeout), **kwargs
            ) as response:
                body = await response.text()
                if response.status >= 400:
                    raise error_for_status(provider, response.status, body, response.headers)
                if not body.strip():
                    return None
                return json.loads(body)
        except ProviderError:
            raise
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise error_for_exception(provider, exc) from exc

    return await with_retries(once, attempts=attempts)


async def request_bytes(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    provider: str,
    timeout: float = 120.0,
    attempts: int = 3,
    **kwargs: Any,
) -> tuple[bytes, str]:
    """One request whose answer is a file: returns (bytes, content type)."""

    async def once() -> tuple[bytes, str]:
        try:
            async with session.request(
                method, url, timeout=aiohttp.ClientTimeout(total=timeout), **kwargs
            ) as response:
                body = await response.read()
                if response.status >= 400:
                    text = body.decode("utf-8", "replace")
                    raise error_for_status(provider, response.status, text, response.headers)
                return body, response.headers.get("Content-Type", "")
        except ProviderError:
            raise
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise error_for_exception(provider, exc) from exc

    return await with_retries(once, attempts=attempts)
