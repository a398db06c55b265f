"""The `stable-diffusion` provider: an AUTOMATIC1111-compatible WebUI API (A1111, Forge, SD.Next).

A call's seeds become one batched txt2img (or img2img, for Vary) per healthy server of the pool
(providers.batching): a GPU renders a batch faster than the same images one by one. A server that
dies mid-batch is cooled off and its work goes elsewhere. While a request is open, /progress is
polled for live previews and to notice a hung server (providers.webui_watch); every request has
one time budget that fits its work, shared by its retries (providers.budget).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import aiohttp

from imagebot.providers.base import (
    BadResponse,
    FreeSizes,
    PreviewCallback,
    ProgressCallback,
    ProviderError,
    RenderedImage,
    RenderRequest,
    SizeRule,
    Unavailable,
    UpscaledImage,
)
from imagebot.providers.batching import MAX_BATCH, plan_batches, render_batches
from imagebot.providers.budget import (
    ANSWER_TIMEOUT,
    CONNECT_TIMEOUT,
    Budget,
    render_budget,
    retry_within,
)
from imagebot.providers.server_pool import ServerPool
from imagebot.providers.webui_client import WebUIClient
from imagebot.providers.webui_http import (
    API,
    PROVIDER_ID,
    decode_image,
    encode_image,
    image_format,
    pixel_size,
    reported_seeds,
    server_root,
    shown,
)
from imagebot.providers.webui_watch import PreviewMux, WatchTimes, watch

if TYPE_CHECKING:
    from imagebot.providers.catalog import ProviderOptions

__all__ = ["API", "PROVIDER_ID", "WebUIProvider", "server_root", "shown"]

DEFAULT_UPSCALER = "R-ESRGAN 4x+"
DEFAULT_STRENGTH = 0.55
UPSCALE_BUDGET = 300.0  # an ESRGAN pass over a 2048² image takes well under a minute


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
        timeout: float | None = None,
        info_timeout: float = ANSWER_TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
        watch_times: WatchTimes | None = None,
        attempts: int = 3,
        base_delay: float = 0.5,
        cooloff: float = 30.0,
        pool: ServerPool | None = None,
        upscaler: str | None = None,
        batching: bool = True,
    ):
        """`timeout`: a fixed total budget per request (default: sized to each job)."""
        roots = [server_root(url) for url in urls]
        if not roots:
            raise ValueError("WebUIProvider needs at least one server URL")
        self._session = session
        self.pool = pool or ServerPool(roots, cooloff=cooloff)
        self._concurrency = max_concurrency or len(self.pool)
        self._timeout = timeout
        self._info_timeout = info_timeout
        self._client = WebUIClient(
            session, info_timeout=info_timeout, connect_timeout=connect_timeout
        )
        self._watch = watch_times or WatchTimes(answer=info_timeout)
        self._attempts = attempts
        self._base_delay = base_delay
        self._wanted_upscaler = upscaler or DEFAULT_UPSCALER
        self._batching = batching  # False: one request per image, the original tool's way
        self._checkpoint: str | None = None
        self._checkpoint_known = False
        self._upscalers: dict[str, str] = {}

    @classmethod
    def from_options(
        cls, options: ProviderOptions, session: aiohttp.ClientSession
    ) -> WebUIProvider:
        """STABLE_DIFFUSION_URL (one URL, or several forming a pool), STABLE_DIFFUSION_UPSCALER."""
        return cls(
            session, options.stable_diffusion_urls, upscaler=options.stable_diffusion_upscaler
        )

    @property
    def model(self) -> str:
        return self._checkpoint or "stable-diffusion"

    @property
    def max_images_per_call(self) -> int:
        # One call per batch: render() itself cuts it into one batched request per server.
        return MAX_BATCH if self._batching else 1

    @property
    def max_concurrency(self) -> int:
        return self._concurrency

    @property
    def accepts_init_image(self) -> bool:
        return True  # /sdapi/v1/img2img

    def sizes(self) -> SizeRule:
        return FreeSizes(step=8, min_side=64, max_side=2048, max_pixels=2048 * 2048)

    async def aclose(self) -> None:
        """Nothing to release: the HTTP session belongs to the caller."""

    # ------------------------------------------------------------------ render and vary

    async def render(
        self,
        request: RenderRequest,
        progress: ProgressCallback | None = None,
        previews: PreviewCallback | None = None,
    ) -> list[RenderedImage]:
        """The images of `request` in seed order: txt2img, or img2img when it has an init image.

        Raises PartialRender (a ProviderError carrying the good images) when some batches failed.
        """
        servers = len(self.pool.healthy()) or 1
        limit = MAX_BATCH if self._batching else 1
        batches = plan_batches(request.seeds, servers, limit=limit)
        mux = PreviewMux(previews)

        async def one(index: int, seeds: Sequence[int]) -> list[RenderedImage]:
            return await self._render_batch(request, list(seeds), index, mux, progress)

        return await render_batches(batches, one)

    async def _render_batch(
        self,
        request: RenderRequest,
        seeds: list[int],
        index: int,
        mux: PreviewMux,
        progress: ProgressCallback | None,
    ) -> list[RenderedImage]:
        endpoint = "img2img" if request.init_image is not None else "txt2img"
        payload = self.payload(request, seeds[0], count=len(seeds))
        steps = payload.get("steps")
        size = request.size
        budget = Budget(self._timeout or render_budget(size.width, size.height, steps, len(seeds)))

        async def on_pool() -> list[RenderedImage]:
            return await self.pool.run(
                lambda url: self._generate(url, endpoint, payload, seeds, index, mux, progress)
            )

        what = f"{endpoint} of {len(seeds)} image{'s' if len(seeds) > 1 else ''}"
        return await retry_within(
            on_pool, budget, attempts=self._attempts, base_delay=self._base_delay,
            provider=PROVIDER_ID, what=what,
        )  # fmt: skip

    def payload(self, request: RenderRequest, seed: int, count: int = 1) -> dict[str, Any]:
        """The /sdapi/v1/txt2img (or img2img) body for `count` images from `seed` on."""
        settings: Mapping[str, Any] = request.settings or {}
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt,
            "width": request.size.width,
            "height": request.size.height,
            "seed": int(seed),  # A1111 gives image i of a batch seed + i
            "batch_size": int(count),
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
        if request.init_image is not None:
            strength = DEFAULT_STRENGTH if request.strength is None else request.strength
            body["init_images"] = [encode_image(request.init_image)]
            body["denoising_strength"] = float(strength)
            body["resize_mode"] = 0  # "Just resize": the init image is already at `size`
        return body

    async def _generate(
        self,
        url: str,
        endpoint: str,
        payload: dict[str, Any],
        seeds: list[int],
        index: int,
        mux: PreviewMux,
        progress: ProgressCallback | None,
    ) -> list[RenderedImage]:
        """One batched request on `url`, watched by a /progress poller until it answers."""
        if not self._checkpoint_known:
            await self._learn_checkpoint(url)
        wants_images = mux.callback is not None
        query = "progress?skip_current_image=" + ("false" if wants_images else "true")
        post = asyncio.ensure_future(
            self._client.call(url, "POST", endpoint, json=payload, timeout=None)
        )
        watcher = asyncio.ensure_future(
            watch(
                url,
                lambda limit: self._client.call(url, "GET", query, timeout=limit),
                self._watch,
                batch=index,
                previews=mux,
                progress=progress,
                # Another request of ours on the same GPU would show its picture, not this one's.
                show_previews=lambda: wants_images and self.pool.in_flight(url) == 1,
            )
        )
        try:
            await asyncio.wait({post, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if not post.done():
                watcher.result()  # raises: the server is hung
            answer = post.result()
        finally:
            for task in (post, watcher):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, ProviderError):
                    await task
        return self._images(url, endpoint, answer, seeds)

    def _images(
        self, url: str, endpoint: str, answer: Any, seeds: list[int]
    ) -> list[RenderedImage]:
        where = shown(url)
        images = answer.get("images") if isinstance(answer, dict) else None
        if not isinstance(images, list) or not images:
            raise BadResponse(PROVIDER_ID, f"{where} answered {endpoint} without an image")
        # Extensions (ControlNet, ...) may append extra pictures after the batch: keep the batch.
        images = images[: len(seeds)]
        if len(images) < len(seeds):
            raise BadResponse(
                PROVIDER_ID, f"{where} sent {len(images)} of the {len(seeds)} images asked for"
            )
        found = reported_seeds(answer, seeds)
        result = []
        for text, seed in zip(images, found, strict=True):
            try:
                data = decode_image(text, where, endpoint)
            except BadResponse:
                data = b""  # the caller reports this one image and keeps the others
            result.append(RenderedImage(data=data, seed=seed, format=image_format(data)))
        return result

    async def _learn_checkpoint(self, url: str) -> None:
        """Read the loaded checkpoint once, so info files say which model drew the images.

        Also the first-byte check of a server: one that does not answer this small call is
        reported at once, instead of after a whole render's budget.
        """
        try:
            options = await self._client.call(url, "GET", "options", timeout=self._info_timeout)
        except Unavailable:
            raise
        except ProviderError:
            return  # the render itself reports what is wrong with this server
        checkpoint = options.get("sd_model_checkpoint") if isinstance(options, dict) else None
        self._checkpoint = checkpoint if isinstance(checkpoint, str) and checkpoint else None
        self._checkpoint_known = True

    # ------------------------------------------------------------------ upscale

    async def upscale(self, image: bytes, scale: int = 2) -> UpscaledImage:
        """`image` at `scale` times its size with the server's upscaler (extra-single-image)."""
        budget = Budget(self._timeout or UPSCALE_BUDGET)

        async def on_pool() -> UpscaledImage:
            return await self.pool.run(lambda url: self._upscale_on(url, image, scale))

        return await retry_within(
            on_pool, budget, attempts=self._attempts, base_delay=self._base_delay,
            provider=PROVIDER_ID, what="the upscale",
        )  # fmt: skip

    async def _upscale_on(self, url: str, image: bytes, scale: int) -> UpscaledImage:
        name = await self._upscaler(url)
        body = {
            "resize_mode": 0,  # scale by upscaling_resize
            "upscaling_resize": scale,
            "upscaler_1": name,
            "image": encode_image(image),
        }
        answer = await self._client.call(url, "POST", "extra-single-image", json=body, timeout=None)
        data = decode_image(
            answer.get("image") if isinstance(answer, dict) else None,
            shown(url),
            "extra-single-image",
        )
        try:
            width, height = pixel_size(data)
        except (OSError, ValueError) as exc:
            where = shown(url)
            raise BadResponse(PROVIDER_ID, f"{where} sent an upscale that is no image") from exc
        return UpscaledImage(data, width, height, upscaler=name, format=image_format(data))

    async def _upscaler(self, url: str) -> str:
        """STABLE_DIFFUSION_UPSCALER when the server has it, else its first real upscaler."""
        if url not in self._upscalers:
            items = await self._client.call(url, "GET", "upscalers", timeout=self._info_timeout)
            names = [
                str(item["name"])
                for item in items if isinstance(items, list)
                if isinstance(item, dict) and item.get("name")
            ]  # fmt: skip
            wanted = self._wanted_upscaler.casefold()
            chosen = next((n for n in names if n.casefold() == wanted), None)
            chosen = chosen or next((n for n in names if n.casefold() not in ("none", "")), None)
            if chosen is None:
                raise ProviderError(
                    PROVIDER_ID,
                    f"{shown(url)} has no upscaler (GET {API}/upscalers lists none); install "
                    f"one such as {DEFAULT_UPSCALER} in the WebUI",
                )
            self._upscalers[url] = chosen
        return self._upscalers[url]
