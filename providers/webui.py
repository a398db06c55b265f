"""The `stable-diffusion` provider: an AUTOMATIC1111-compatible WebUI API (A1111, Forge, SD.Next).

One txt2img request per image, each with its own seed, spread over a pool of servers (one GPU
each) by ServerPool; a server that dies mid-batch is cooled off and its work goes elsewhere.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import aiohttp
from yarl import URL

from imagebot.providers.base import (
    BadResponse,
    FreeSizes,
    NeedsKey,
    ProviderError,
    RenderedImage,
    RenderRequest,
    SizeRule,
)
from imagebot.providers.http_errors import error_for_exception, error_for_status, with_retries
from imagebot.providers.server_pool import ServerPool

if TYPE_CHECKING:
    from imagebot.providers.catalog import ProviderOptions

PROVIDER_ID = "stable-diffusion"
API = "/sdapi/v1"
RENDER_TIMEOUT = 600.0  # a large SDXL image on a small GPU takes minutes
INFO_TIMEOUT = 10.0
# A pasted API address ("http://host:7860/sdapi/v1/") still means the server root.
API_SUFFIX = re.compile(r"/+(sdapi(/v1)?(/[a-z0-9-]*)?)?/*$")


def server_root(url: str) -> str:
    """The server root of a configured URL: no trailing slash, no /sdapi/v1 tail."""
    return API_SUFFIX.sub("", url.strip())


def shown(url: str) -> str:
    """A URL safe for messages: credentials (user:password@) removed."""
    parsed = URL(url)
    return str(parsed.with_user(None)) if parsed.user or parsed.password else url


def _image_format(data: bytes) -> str:
    if data.startswith(b"\xff\xd8"):
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return "png"


def _a1111_message(body: str) -> str:
    """The useful words of an A1111 error body ({"detail": ...} or its api_middleware shape)."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()[:300] or "no details"
    if not isinstance(data, dict):
        return str(data)[:300]
    detail = data.get("detail")
    if isinstance(detail, list):  # FastAPI validation errors
        parts = []
        for item in detail:
            if isinstance(item, dict):
                field = ".".join(str(p) for p in item.get("loc", [])[1:]) or "body"
                parts.append(f"{field}: {item.get('msg', 'invalid')}")
        return "; ".join(parts) or "invalid request"
    # api_middleware puts str(exception) in "errors", the HTTPException text in "detail"
    for key in ("detail", "errors", "error"):
        if isinstance(data.get(key), str) and data[key].strip():
            return data[key].strip()[:300]
    return body.strip()[:300]


def _located(error: ProviderError, url: str) -> ProviderError:
    """The same error, saying which server of the pool it came from."""
    located = type(error)(
        PROVIDER_ID, f"{shown(url)}: {error.message}", retry_after=error.retry_after
    )
    return located


class WebUIProvider:
    """Renders on one or several AUTOMATIC1111-compatible servers started with --api."""

    provider_id: ClassVar[str] = PROVIDER_ID
    offline: ClassVar[bool] = False

    def __init__(
        self,
        session: aiohttp.ClientSession,
        urls: Sequence[str],
        *,
        max_concurrency: int | None = None,
        timeout: float = RENDER_TIMEOUT,
        info_timeout: float = INFO_TIMEOUT,
        attempts: int = 3,
        base_delay: float = 0.5,
        cooloff: float = 30.0,
        pool: ServerPool | None = None,
    ):
        roots = [server_root(url) for url in urls]
        if not roots:
            raise ValueError("WebUIProvider needs at least one server URL")
        self._session = session
        self.pool = pool or ServerPool(roots, cooloff=cooloff)
        self._concurrency = max_concurrency or len(self.pool)
        self._timeout = timeout
        self._info_timeout = info_timeout
        self._attempts = attempts
        self._base_delay = base_delay
        self._checkpoint: str | None = None
        self._checkpoint_known = False
        self._samplers: dict[str, list[str]] = {}

    @classmethod
    def from_options(
        cls, options: ProviderOptions, session: aiohttp.ClientSession
    ) -> WebUIProvider:
        """STABLE_DIFFUSION_URL: one URL, or several forming a pool."""
        return cls(session, options.stable_diffusion_urls)

    @property
    def model(self) -> str:
        return self._checkpoint or "stable-diffusion"

    @property
    def max_images_per_call(self) -> int:
        return 1  # one seed per request, so a pool can spread a batch over its GPUs

    @property
    def max_concurrency(self) -> int:
        return self._concurrency

    def sizes(self) -> SizeRule:
        return FreeSizes(step=8, min_side=64, max_side=2048, max_pixels=2048 * 2048)

    async def aclose(self) -> None:
        """Nothing to release: the HTTP session belongs to the caller."""

    async def render(self, request: RenderRequest) -> list[RenderedImage]:
        """One txt2img call per seed, each on the least busy server of the pool."""
        return list(await asyncio.gather(*(self._render_one(request, s) for s in request.seeds)))

    async def _render_one(self, request: RenderRequest, seed: int) -> RenderedImage:
        payload = self.payload(request, seed)

        async def on_pool() -> RenderedImage:
            return await self.pool.run(lambda url: self._txt2img(url, payload))

        return await with_retries(on_pool, attempts=self._attempts, base_delay=self._base_delay)

    def payload(self, request: RenderRequest, seed: int) -> dict[str, Any]:
        """The /sdapi/v1/txt2img body for one image of `request`."""
        settings: Mapping[str, Any] = request.settings or {}
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt,
            "width": request.size.width,
            "height": request.size.height,
            "seed": int(seed),
            "batch_size": 1,
            "n_iter": 1,
            "send_images": True,
            "save_images": False,
        }
        if settings.get("steps") is not None:
            body["steps"] = int(settings["steps"])
        if settings.get("cfg_scale") is not None:
            body["cfg_scale"] = float(settings["cfg_scale"])
        sampler = settings.get("sampler_name") or settings.get("sampler")
        if sampler:
            # Combined names ("DPM++ 2M Karras") work on old servers and are split by new ones.
            body["sampler_name"] = str(sampler)
        if settings.get("scheduler"):
            body["scheduler"] = str(settings["scheduler"])
        if settings.get("clip_skip") is not None:
            body["override_settings"] = {"CLIP_stop_at_last_layers": int(settings["clip_skip"])}
        if request.model and request.model not in (PROVIDER_ID, self._checkpoint):
            body.setdefault("override_settings", {})["sd_model_checkpoint"] = request.model
        return body

    async def _txt2img(self, url: str, payload: dict[str, Any]) -> RenderedImage:
        if not self._checkpoint_known:
            await self._learn_checkpoint(url)
        answer = await self._call(url, "POST", "txt2img", json=payload, timeout=self._timeout)
        images = answer.get("images") if isinstance(answer, dict) else None
        if not images:
            raise BadResponse(PROVIDER_ID, f"{shown(url)} answered txt2img without an image")
        try:
            data = base64.b64decode(images[0].split(",", 1)[-1], validate=False)
        except (binascii.Error, AttributeError) as exc:
            raise BadResponse(PROVIDER_ID, f"{shown(url)} sent an image we cannot decode") from exc
        return RenderedImage(data=data, seed=self._reported_seed(answer, payload["seed"]),
                             format=_image_format(data))  # fmt: skip

    @staticmethod
    def _reported_seed(answer: dict, asked: int) -> int | None:
        """The seed the server used (it draws one when asked for -1), from its `info` string."""
        try:
            info = json.loads(answer.get("info") or "{}")
        except (TypeError, ValueError):
            info = {}
        if isinstance(info, dict):
            seeds = info.get("all_seeds")
            if isinstance(seeds, list) and seeds and isinstance(seeds[0], int):
                return seeds[0]
            if isinstance(info.get("seed"), int):
                return info["seed"]
        return asked if asked >= 0 else None

    async def _learn_checkpoint(self, url: str) -> None:
        """Read the loaded checkpoint once, so info files say which model drew the images."""
        try:
            options = await self._call(url, "GET", "options", timeout=self._info_timeout)
        except ProviderError:
            return  # the render itself reports what is wrong with this server
        checkpoint = options.get("sd_model_checkpoint") if isinstance(options, dict) else None
        self._checkpoint = checkpoint if isinstance(checkpoint, str) and checkpoint else None
        self._checkpoint_known = True

    async def _call(self, url: str, method: str, endpoint: str, **kwargs: Any) -> Any:
        """One request, no retries (the pool and render() retry); errors in the user's terms."""
        timeout = aiohttp.ClientTimeout(total=kwargs.pop("timeout"))
        try:
            async with self._session.request(
                method, f"{url}{API}/{endpoint}", timeout=timeout, **kwargs
            ) as response:
                body = await response.text()
                if response.status >= 400:
                    raise await self._error(url, response.status, body, response.headers, kwargs)
                return json.loads(body)
        except ProviderError:
            raise
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise _located(error_for_exception(PROVIDER_ID, exc), url) from exc

    async def _error(
        self, url: str, status: int, body: str, headers: Mapping[str, str], sent: dict
    ) -> ProviderError:
        message = _a1111_message(body)
        where = shown(url)
        if status == 404 and not re.search(r"(sampler|model|script) not found", message, re.I):
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
        return _located(
            error_for_status(PROVIDER_ID, status, json.dumps({"detail": message}), headers), url
        )

    async def _sampler_names(self, url: str) -> list[str]:
        if url not in self._samplers:
            try:
                items = await self._call(url, "GET", "samplers", timeout=self._info_timeout)
                self._samplers[url] = [i["name"] for i in items if isinstance(i, dict)]
            except (ProviderError, KeyError, TypeError):
                return []
        return self._samplers[url]
