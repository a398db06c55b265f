"""HTTP to a WebUI server: calls with connect and answer time-outs, errors in the user's terms."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import aiohttp
from yarl import URL

from imagebot.providers.base import NeedsKey, ProviderError, Unavailable
from imagebot.providers.budget import ANSWER_TIMEOUT, CONNECT_TIMEOUT
from imagebot.providers.http_errors import error_for_exception, error_for_status
from imagebot.providers.webui_http import (
    API,
    PROVIDER_ID,
    a1111_message,
    host_of,
    located,
    seconds,
    shown,
)

KNOWN_404 = re.compile(r"(sampler|model|script|upscaler) not found", re.I)


class WebUIClient:
    """Requests to the /sdapi/v1 API of any server of a pool (no retries: callers retry)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        info_timeout: float = ANSWER_TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
    ):
        self._session = session
        self.info_timeout = info_timeout
        self.connect_timeout = connect_timeout
        self._samplers: dict[str, list[str]] = {}

    async def call(
        self, url: str, method: str, endpoint: str, *, timeout: float | None, **kwargs: Any
    ) -> Any:
        """One request, no retries (the pool and render() retry); errors in the user's terms.

        `timeout`: the most to wait for the answer (None: the caller's budget bounds it).
        """
        limits = aiohttp.ClientTimeout(total=timeout, sock_connect=self.connect_timeout)
        try:
            async with self._session.request(
                method, f"{url}{API}/{endpoint}", timeout=limits, **kwargs
            ) as response:
                body = await response.text()
                if response.status >= 400:
                    raise await self._error(url, response.status, body, response.headers, kwargs)
                return json.loads(body)
        except ProviderError:
            raise
        except aiohttp.ConnectionTimeoutError as exc:
            raise Unavailable(
                PROVIDER_ID, f"cannot connect to the WebUI at {host_of(url)} within "
                f"{seconds(self.connect_timeout)}",
            ) from exc  # fmt: skip
        except TimeoutError as exc:
            raise Unavailable(
                PROVIDER_ID, f"waiting for the WebUI at {host_of(url)}: no answer for "
                f"{seconds(timeout or 0)} ({endpoint.split('?')[0]})",
            ) from exc  # fmt: skip
        except (aiohttp.ClientError, ValueError) as exc:
            raise located(error_for_exception(PROVIDER_ID, exc), url) from exc

    async def _error(
        self, url: str, status: int, body: str, headers: Mapping[str, str], sent: dict
    ) -> ProviderError:
        message = a1111_message(body)
        where = shown(url)
        if status == 404 and not KNOWN_404.search(message):
            # FastAPI's own 404 (no --api), a proxy's page, or a URL with a wrong path
            path = URL(url).path.rstrip("/")
            hint = f"; the URL has the path {path!r}: use the server root" if path else ""
            return ProviderError(
                PROVIDER_ID,
                f"{where} has no WebUI API at {API} (HTTP 404): start the WebUI with --api "
                f"(add it to COMMANDLINE_ARGS) and set STABLE_DIFFUSION_URL to the server root, "
                f"e.g. http://127.0.0.1:7860{hint}",
            )
        if status == 404 and "sampler" in message.lower():
            sampler = (sent.get("json") or {}).get("sampler_name", "?")
            names = await self._sampler_names(url)
            allowed = f"; this server has: {', '.join(names)}" if names else ""
            return ProviderError(
                PROVIDER_ID, f"{where} has no sampler {sampler!r} (HTTP 404){allowed}"
            )
        if status in (401, 403):
            return NeedsKey(
                PROVIDER_ID,
                f"{where} wants API credentials (--api-auth, HTTP {status}: {message}); put "
                f"them in STABLE_DIFFUSION_URL as http://user:password@host:port",
            )
        if status == 422:
            return ProviderError(PROVIDER_ID, f"{where} rejected the request (HTTP 422): {message}")
        # Re-shaped so the shared mapping reads A1111's "detail"/"errors", not its class name.
        return located(
            error_for_status(PROVIDER_ID, status, json.dumps({"detail": message}), headers), url
        )

    async def _sampler_names(self, url: str) -> list[str]:
        if url not in self._samplers:
            try:
                items = await self.call(url, "GET", "samplers", timeout=self.info_timeout)
                self._samplers[url] = [i["name"] for i in items if isinstance(i, dict)]
            except (ProviderError, KeyError, TypeError):
                return []
        return self._samplers[url]
