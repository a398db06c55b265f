"""AI Horde: submit (POST /v2/generate/async), poll /check, collect /status, cancel with DELETE.

The anonymous key (0000000000) works but only for requests the Horde serves without kudos
upfront: at most 576x576 pixels of area and 40 sampling steps (20 with second-order samplers,
10 with LCM). Those are clamped here; past them the Horde answers 403 KudosUpfront, which
becomes a message telling the user to set HORDE_API_KEY.

Vary is the Horde's img2img: the picture goes along as `source_image` (base64 WebP, lossless so
no pixel changes), with `source_processing: "img2img"` and `params.denoising_strength`. The
Horde has no upscale service for a finished picture, so the caller resizes locally.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import astuple
from typing import TYPE_CHECKING, Any, ClassVar

import aiohttp

from imagebot.providers.base import (
    BadResponse,
    FreeSizes,
    NeedsKey,
    ProgressCallback,
    ProviderError,
    Refused,
    RenderedImage,
    RenderRequest,
    Size,
    SizeRule,
    Unavailable,
    notify,
)
from imagebot.providers.catalog import ANONYMOUS_HORDE_KEY as ANONYMOUS_KEY
from imagebot.providers.catalog import DEFAULT_HORDE_URL as DEFAULT_URL
from imagebot.providers.horde_params import (
    ANON_MAX_SIDE_AREA,
    ANON_MAX_STEPS,
    DEFAULT_STRENGTH,
    anonymous_limits,
    horde_sampler,
    source_image,
)
from imagebot.providers.http_errors import (
    error_for_exception,
    error_for_status,
    parse_retry_after,
    request_bytes,
    server_message,
    with_retries,
)

if TYPE_CHECKING:
    from imagebot.providers.catalog import ProviderOptions
CLIENT_AGENT = "imagebot:0.1:unknown"  # name:version:contact, as the Horde asks of clients
UNAVAILABLE_RC = {"TooManyPrompts", "NoValidWorkers", "MaintenanceMode", "TimeoutIP",
                  "TooManyNewIPs", "RequestNotFound"}  # fmt: skip
REFUSED_RC = {"CorruptPrompt", "Profanity"}


class HordeProvider:
    """Renders on the AI Horde, the crowd-sourced network of volunteer GPUs."""

    provider_id: ClassVar[str] = "horde"
    offline: ClassVar[bool] = False

    def __init__(
        self,
        session: aiohttp.ClientSession,
        api_key: str = ANONYMOUS_KEY,
        base_url: str = DEFAULT_URL,
        *,
        models: tuple[str, ...] = (),
        poll_interval: float = 1.0,
        max_poll_interval: float = 10.0,
        timeout: float = 20 * 60.0,
        nsfw: bool = False,
    ):
        self._session = session
        self._key = api_key or ANONYMOUS_KEY
        self._api = base_url.rstrip("/") + "/api/v2"
        self._models = tuple(models)
        # The Horde caches /check for a second; asking faster only adds load (and 429s).
        self._poll_interval = poll_interval
        self._max_poll_interval = max(max_poll_interval, poll_interval)
        self._timeout = timeout
        self._nsfw = nsfw

    @classmethod
    def from_options(
        cls, options: ProviderOptions, session: aiohttp.ClientSession
    ) -> HordeProvider:
        """HORDE_API_KEY (anonymous if unset), HORDE_URL and HORDE_MODELS."""
        key = options.horde_api_key or ANONYMOUS_KEY
        return cls(session, key, options.horde_url, models=options.horde_models)

    @property
    def anonymous(self) -> bool:
        return self._key == ANONYMOUS_KEY

    @property
    def model(self) -> str:
        return self._models[0] if self._models else "any Horde model"

    @property
    def max_images_per_call(self) -> int:
        return 10  # `n` may be 20, but anonymous requests of many images wait very long

    @property
    def max_concurrency(self) -> int:
        return 2 if self.anonymous else 4

    @property
    def accepts_init_image(self) -> bool:
        """The Horde's workers take a source image (img2img) with any key."""
        return True

    def sizes(self) -> SizeRule:
        if self.anonymous:
            return FreeSizes(step=64, max_side=1024, max_pixels=ANON_MAX_SIDE_AREA**2)
        return FreeSizes(step=64, max_side=2048, max_pixels=1024 * 1024)

    async def aclose(self) -> None:
        """Nothing to release: the HTTP session belongs to the caller."""

    async def render(
        self, request: RenderRequest, progress: ProgressCallback | None = None
    ) -> list[RenderedImage]:
        """Submit one request of `request.count` images, wait for it, return its images."""
        payload = await self._payload(request, progress)
        submitted = await self._call("POST", "/generate/async", json=payload, attempts=2)
        job_id = submitted.get("id") if isinstance(submitted, dict) else None
        if not job_id:
            raise BadResponse(self.provider_id, "the Horde accepted the request but sent no id")
        if isinstance(submitted, dict) and submitted.get("message"):
            await notify(progress, f"Horde: {submitted['message']}")
        try:
            async with asyncio.timeout(self._timeout):
                await self._wait(job_id, progress)
                status = await self._call("GET", f"/generate/status/{job_id}")
        except TimeoutError:
            await self._cancel(job_id)
            raise Unavailable(
                self.provider_id,
                f"the Horde did not finish within {self._timeout / 60:.0f} min; request cancelled",
            ) from None
        except (asyncio.CancelledError, ProviderError):
            await self._cancel(job_id)
            raise
        return await self._images(status, request)

    # ------------------------------------------------------------------ steps

    async def _payload(
        self, request: RenderRequest, progress: ProgressCallback | None
    ) -> dict[str, Any]:
        settings = request.settings
        sampler, karras = horde_sampler(str(settings.get("sampler") or "k_euler_a"))
        sampler = str(settings.get("sampler_name") or sampler)
        width, height = (max(64, round(side / 64) * 64) for side in astuple(request.size))
        size = Size(width, height)
        steps = int(settings.get("steps", 30))
        if self.anonymous:
            clamped, fewer = anonymous_limits(size, steps, sampler)
            if (clamped, fewer) != (size, steps):
                await notify(
                    progress,
                    f"Horde (anonymous): rendering {clamped} with {fewer} steps instead of "
                    f"{size} with {steps}; set HORDE_API_KEY to a key with kudos for more",
                )
            size, steps = clamped, fewer
        params: dict[str, Any] = {
            "sampler_name": sampler,
            "cfg_scale": round(float(settings.get("cfg_scale", 7.0)), 2),
            "width": size.width,
            "height": size.height,
            "steps": steps,
            "karras": karras,
            "n": request.count,
            "seed": str(request.seeds[0]),
        }
        if request.count > 1:
            params["seed_variation"] = 1  # the Horde adds it per image: one seed each
        prompt = request.prompt
        if request.negative_prompt and "###" not in prompt:
            prompt = f"{prompt} ### {request.negative_prompt}"  # the Horde's negative syntax
        payload: dict[str, Any] = {
            "prompt": prompt,
            "params": params,
            "nsfw": self._nsfw,
            "censor_nsfw": not self._nsfw,
            "trusted_workers": False,
            "slow_workers": True,  # without them the Horde asks for kudos upfront
            "r2": True,
            "shared": False,
        }
        model = request.model if request.model and request.model != self.model else None
        if model or self._models:
            payload["models"] = [model] if model else list(self._models)
        if request.init_image is not None:
            strength = DEFAULT_STRENGTH if request.strength is None else request.strength
            params["denoising_strength"] = round(min(1.0, max(0.01, float(strength))), 2)
            payload["source_image"] = source_image(request.init_image)
            payload["source_processing"] = "img2img"
        return payload

    async def _wait(self, job_id: str, progress: ProgressCallback | None) -> None:
        """Poll /check until done: never faster than `poll_interval`, slower while unchanged."""
        last: tuple[Any, ...] | None = None
        unchanged = 0
        while True:
            check = await self._call("GET", f"/generate/check/{job_id}", attempts=4)
            if not isinstance(check, dict):
                raise BadResponse(self.provider_id, "the Horde's /check answer is not an object")
            if check.get("faulted"):
                raise ProviderError(
                    self.provider_id, "the Horde's workers failed on this request (faulted)"
                )
            if check.get("is_possible") is False:
                raise Unavailable(
                    self.provider_id,
                    "no Horde worker can take this request now (model, size or steps); "
                    "try a smaller size or another model",
                )
            if check.get("done"):
                return
            wait_time = int(check.get("wait_time") or 0)
            state = (check.get("queue_position"), wait_time, check.get("finished"),
                     check.get("processing"))  # fmt: skip
            if state != last:
                unchanged = 0
                await notify(progress, self._describe(check))
            else:
                unchanged += 1
            last = state
            delay = max(self._poll_interval, wait_time / 4) * 1.5 ** min(unchanged, 6)
            await asyncio.sleep(min(delay, self._max_poll_interval))

    @staticmethod
    def _describe(check: Mapping[str, Any]) -> str:
        eta = f", about {check.get('wait_time', 0)} s left"
        if check.get("processing") or check.get("finished"):
            done = check.get("finished", 0)
            total = done + check.get("processing", 0) + check.get("waiting", 0)
            return f"Horde: rendering ({done}/{total} done{eta})"
        return f"Horde: queue position {check.get('queue_position', '?')}{eta}"

    async def _images(self, status: Any, request: RenderRequest) -> list[RenderedImage]:
        generations = status.get("generations") if isinstance(status, dict) else None
        if not generations:
            raise BadResponse(self.provider_id, "the Horde finished without any image")
        kept = [g for g in generations if not self._censored(g)]
        if not kept:
            raise Refused(
                self.provider_id, "the Horde's safety filter censored every image of this prompt"
            )
        seeds = list(request.seeds)

        def position(generation: Mapping[str, Any]) -> int:
            seed = str(generation.get("seed", ""))
            return seeds.index(int(seed)) if seed.isdigit() and int(seed) in seeds else len(seeds)

        kept.sort(key=position)
        return list(await asyncio.gather(*(self._image(g) for g in kept)))

    @staticmethod
    def _censored(generation: Mapping[str, Any]) -> bool:
        metadata = generation.get("gen_metadata") or []
        return bool(generation.get("censored")) or any(
            item.get("type") == "censorship" for item in metadata if isinstance(item, dict)
        )

    async def _image(self, generation: Mapping[str, Any]) -> RenderedImage:
        img = str(generation.get("img") or "")
        seed_text = str(generation.get("seed", ""))
        seed = int(seed_text) if seed_text.isdigit() else None
        if img.startswith(("http://", "https://")):
            # An r2 download link: a plain GET, and never with our apikey header.
            data, content_type = await request_bytes(
                self._session, "GET", img, provider=self.provider_id
            )
        else:
            try:
                data = base64.b64decode(img, validate=True)
            except (binascii.Error, ValueError):
                raise BadResponse(self.provider_id, "the Horde sent an unreadable image") from None
            content_type = ""
        return RenderedImage(data=data, seed=seed, format=_image_format(data, content_type))

    async def _cancel(self, job_id: str) -> None:
        """Best effort DELETE, so the Horde stops spending workers (and kudos) on it."""
        try:
            await asyncio.wait_for(
                self._call("DELETE", f"/generate/status/{job_id}", attempts=1), timeout=10
            )
        except (ProviderError, TimeoutError):
            pass

    # ------------------------------------------------------------------ HTTP

    async def _call(self, method: str, path: str, *, json: Any = None, attempts: int = 3) -> Any:
        headers = {"apikey": self._key, "Client-Agent": CLIENT_AGENT}

        async def once() -> Any:
            try:
                async with self._session.request(
                    method, self._api + path, json=json, headers=headers,
                    timeout=aiohttp.ClientTimeout(total=60),
                ) as response:  # fmt: skip
                    body = await response.text()
                    if response.status >= 400:
                        raise self._error(response.status, body, response.headers)
                    return _loads(body)
            except ProviderError:
                raise
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                raise error_for_exception(self.provider_id, exc) from exc

        return await with_retries(once, attempts=attempts)

    def _error(self, status: int, body: str, headers: Mapping[str, str]) -> ProviderError:
        """Horde errors are {"message": ..., "rc": ...}; the rc says what the user can do."""
        try:
            data = _loads(body)
        except ValueError:
            data = None
        rc = data.get("rc", "") if isinstance(data, dict) else ""
        message = server_message(body)
        if rc == "KudosUpfront":
            if self.anonymous:
                return NeedsKey(
                    self.provider_id,
                    f"this request needs kudos upfront, which the anonymous key has not: "
                    f"{message} Set HORDE_API_KEY to a registered key with kudos, or ask for "
                    f"at most {ANON_MAX_SIDE_AREA}x{ANON_MAX_SIDE_AREA} pixels and "
                    f"{ANON_MAX_STEPS} steps.",
                )
            return ProviderError(
                self.provider_id, f"your Horde account has too few kudos for this: {message}"
            )
        if rc == "InvalidAPIKey" or status == 401:
            return NeedsKey(
                self.provider_id,
                f"the Horde does not know HORDE_API_KEY ({rc or status}): {message}",
            )
        if rc in REFUSED_RC:
            return Refused(self.provider_id, f"the Horde refused the prompt ({rc}): {message}")
        if rc in UNAVAILABLE_RC:
            retry = parse_retry_after(headers, body)
            if retry is None and rc == "MaintenanceMode":
                retry = 60.0  # the Horde's own retry_after for maintenance
            return Unavailable(self.provider_id, f"{message} ({rc})", retry_after=retry)
        error = error_for_status(self.provider_id, status, body, headers)
        if rc and type(error) is ProviderError:
            return ProviderError(self.provider_id, f"{error.message} ({rc})")
        return error


def _loads(body: str) -> Any:
    return json.loads(body) if body.strip() else None


def _image_format(data: bytes, content_type: str) -> str:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data.startswith(b"\x89PNG"):
        return "png"
    if data.startswith(b"\xff\xd8"):
        return "jpeg"
    return content_type.rsplit("/", 1)[-1] if content_type.startswith("image/") else "webp"
