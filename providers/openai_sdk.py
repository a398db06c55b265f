"""The openai SDK in one place: its client, and its exceptions mapped onto ProviderError."""

from __future__ import annotations

from collections.abc import Iterable

import openai

from imagebot.providers.base import NeedsKey, ProviderError, Unavailable
from imagebot.providers.http_errors import error_for_status, scrub, server_message

KEY_VARIABLE = "OPENAI_API_KEY"


def make_client(
    owner: str, api_key: str | None, base_url: str | None, *, timeout: float, max_retries: int
) -> openai.AsyncOpenAI:
    """An AsyncOpenAI client; NeedsKey when there is neither a key nor a base URL."""
    if not api_key and not base_url:
        raise NeedsKey(
            owner, "set OPENAI_API_KEY, or OPENAI_BASE_URL for an OpenAI-compatible server"
        )
    # Local servers (Ollama, LM Studio, vLLM, LocalAI) ignore the key, but the SDK wants one.
    return openai.AsyncOpenAI(
        api_key=api_key or "not-needed",
        base_url=base_url,
        timeout=timeout,
        max_retries=max_retries,
    )


def error_for_openai(
    provider: str, exc: BaseException, *, secrets: Iterable[str | None] = ()
) -> ProviderError:
    """The ProviderError for an openai SDK exception (status errors go through http_errors)."""
    secrets = tuple(secrets)
    mapped = _map(provider, exc)
    message = scrub(mapped.message, secrets)
    return type(mapped)(provider, message, retry_after=mapped.retry_after)


def _map(provider: str, exc: BaseException) -> ProviderError:
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, openai.APITimeoutError):
        return Unavailable(provider, "the server did not answer in time")
    if isinstance(exc, openai.APIConnectionError):
        where = _host_of(exc)
        return Unavailable(provider, f"cannot connect to {where}" if where else "connection failed")
    if isinstance(exc, openai.APIStatusError):
        body = _body_text(exc)
        mapped = error_for_status(provider, exc.status_code, body, exc.response.headers)
        if isinstance(mapped, NeedsKey):
            return NeedsKey(
                provider,
                f"the server refused the key (HTTP {exc.status_code}): "
                f"{server_message(body)}; check {KEY_VARIABLE}",
            )
        return mapped
    if isinstance(exc, openai.APIError):
        return ProviderError(provider, exc.message or exc.__class__.__name__)
    if isinstance(exc, openai.OpenAIError):
        return ProviderError(provider, f"{exc.__class__.__name__}: {exc}")
    return ProviderError(provider, f"{exc.__class__.__name__}: {exc}")


def _body_text(exc: openai.APIStatusError) -> str:
    try:
        return exc.response.text
    except Exception:  # a streamed or closed response: fall back on what the SDK parsed
        return str(exc.message)


def _host_of(exc: openai.APIConnectionError) -> str:
    try:
        url = exc.request.url
        return f"{url.host}:{url.port}" if url.port else str(url.host)
    except Exception:  # no request attached
        return ""
