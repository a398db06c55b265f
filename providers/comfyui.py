"""ComfyUI: fill an API-format workflow, queue it (POST /prompt), follow /ws, fetch /view.

A call's seeds become one prompt per healthy server of the pool (COMFYUI_URL may list several),
with EmptyLatentImage.batch_size set to that server's share (providers.batching): a GPU renders
a batch faster than the same images queued one by one. Vary uploads the picture (/upload/image)
and runs the shipped image-to-image graph; Upscale runs the shipped upscale graph, with the
server's upscale model when it has one. Every job has one time budget shared by its retries
(providers.budget); comfyui_watch follows each prompt and notices a hung server.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import aiohttp

from imagebot.providers.base import (
    BadResponse,
    ConfigError,
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
from imagebot.providers.comfyui_client import PROVIDER_ID, ComfyClient, host_of
from imagebot.providers.comfyui_watch import PromptWatch, WatchTimes, seed_label
from imagebot.providers.comfyui_workflow import (
    DEFAULT_WORKFLOW,
    comfy_sampler,
    fill_workflow,
    load_img2img_workflow,
    load_upscale_workflows,
    load_workflow,
    placeholders_in,
)
from imagebot.providers.server_pool import ServerPool
from imagebot.providers.webui_watch import PreviewMux

if TYPE_CHECKING:
    from imagebot.providers.catalog import ProviderOptions

__all__ = ["ComfyUIProvider", "comfy_sampler", "fill_workflow", "output_files"]

DEFAULT_STRENGTH = 0.55  # Vary: as the WebUI provider and SPEC §3
UPSCALE_BUDGET = 300.0  # an upscale model over a 2048² image takes well under a minute
RESIZE_METHOD = "lanczos"  # what the upscale graph's ImageScale / ImageScaleBy use


def image_format(data: bytes) -> str:
    """png, jpeg or webp, from the file's first bytes."""
    if data.startswith(b"\xff\xd8"):
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return "png"


def pixel_size(data: bytes, where: str) -> tuple[int, int]:
    """(width, height) of an image; BadResponse naming `where` when it is none."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as picture:
            return picture.size
    except (OSError, UnidentifiedImageError, ValueError):
        raise BadResponse(PROVIDER_ID, f"{where} is not an image") from None


def output_files(entry: dict[str, Any], workflow: dict[str, Any], count: int) -> list[dict]:
    """The first `count` files of the first output node: SaveImage's `output`, else `temp`."""
    outputs = entry.get("outputs") or {}
    order = {node_id: index for index, node_id in enumerate(workflow)}
    groups = [
        images
        for node_id in sorted(outputs, key=lambda n: order.get(n, len(order)))
        if (images := (outputs[node_id] or {}).get("images"))
    ]
    saved = [group for group in groups if group[0].get("type") == "output"]
    files = (saved or groups or [[]])[0]
    if not files:
        raise BadResponse(PROVIDER_ID, "the workflow ran but saved no image (add a SaveImage node)")
    if len(files) < count:
        raise BadResponse(
            PROVIDER_ID, f"the server sent {len(files)} of the {count} images asked for"
        )
    return files[:count]


class ComfyUIProvider:
    """Renders with a ComfyUI server (or a pool of them) through its HTTP and websocket API."""

    provider_id: ClassVar[str] = PROVIDER_ID
    offline: ClassVar[bool] = False

    def __init__(
        self,
        session: aiohttp.ClientSession,
        urls: Sequence[str],
        *,
        workflow_path: str | Path | None = None,
        checkpoint: str | None = None,
        timeout: float | None = None,
        answer_timeout: float = ANSWER_TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
        watch_times: WatchTimes | None = None,
        poll_interval: float = 1.0,
        use_websocket: bool = True,
        batching: bool = True,
        attempts: int | None = None,
        base_delay: float = 0.5,
    ):
        """`timeout`: a fixed total budget per job (default: sized to each job's work)."""
        if not urls:
            raise ConfigError("COMFYUI_URL is not set: give the ComfyUI server root(s)")
        self._pool = ServerPool([url.rstrip("/") for url in urls])
        path = Path(workflow_path) if workflow_path else DEFAULT_WORKFLOW
        self._workflow = load_workflow(path, "COMFYUI_WORKFLOW" if workflow_path else "COMFYUI")
        self._workflow_name = path.name if workflow_path else None
        self._img2img = load_img2img_workflow()
        self._upscale = load_upscale_workflows()
        self._checkpoint = checkpoint
        self._found: dict[str, str] = {}  # server -> the checkpoint it offered first
        self._upscale_models: dict[str, str | None] = {}  # server -> its first upscale model
        self._timeout = timeout
        self._client = ComfyClient(
            session, answer_timeout=answer_timeout, connect_timeout=connect_timeout
        )
        self._times = watch_times or WatchTimes(answer=answer_timeout, poll=poll_interval)
        self._use_websocket = use_websocket
        self._batching = batching
        # With a pool, fail over at once rather than retry a dead server.
        self._attempts = attempts or (1 if len(self._pool) > 1 else 2)
        self._base_delay = base_delay

    @classmethod
    def from_options(
        cls, options: ProviderOptions, session: aiohttp.ClientSession
    ) -> ComfyUIProvider:
        """COMFYUI_URL, and COMFYUI_WORKFLOW / COMFYUI_CHECKPOINT if set."""
        return cls(
            session,
            options.comfyui_urls,
            workflow_path=options.comfyui_workflow,
            checkpoint=options.comfyui_checkpoint,
        )

    @property
    def model(self) -> str:
        if self._checkpoint:
            return self._checkpoint
        if "checkpoint" not in placeholders_in(self._workflow) and self._workflow_name:
            return f"workflow {self._workflow_name}"
        return next(iter(self._found.values()), "server's first checkpoint")

    @property
    def max_images_per_call(self) -> int:
        return MAX_BATCH  # render() itself cuts a call into one prompt per server

    @property
    def max_concurrency(self) -> int:
        return len(self._pool)

    @property
    def accepts_init_image(self) -> bool:
        return True  # the shipped img2img workflow (Vary)

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
        """The images of `request` in seed order (img2img when it has an init image).

        Raises PartialRender (a ProviderError carrying the good images) when some prompts failed.
        """
        template = self._img2img if request.init_image is not None else self._workflow
        # A user's workflow without {{batch_size}} renders one image per prompt, as it always did.
        batched = self._batching and "batch_size" in placeholders_in(template)
        servers = len(self._pool.healthy()) or 1
        batches = plan_batches(request.seeds, servers, limit=MAX_BATCH if batched else 1)
        mux = PreviewMux(previews)

        async def one(index: int, seeds: Sequence[int]) -> list[RenderedImage]:
            budget = Budget(self._timeout or render_budget(
                request.size.width, request.size.height, self._steps(request), len(seeds)
            ))  # fmt: skip

            async def on_pool() -> list[RenderedImage]:
                return await self._pool.run(
                    lambda url: self._render_on(
                        url, template, request, list(seeds), index, mux, progress
                    )
                )

            kind = "img2img" if request.init_image is not None else "render"
            what = f"the {kind} of {seed_label(seeds)}"
            return await retry_within(
                on_pool, budget, attempts=self._attempts, base_delay=self._base_delay,
                provider=PROVIDER_ID, what=what,
            )  # fmt: skip

        return await render_batches(batches, one)

    @staticmethod
    def _steps(request: RenderRequest) -> int:
        return int(request.settings.get("steps", 20))

    async def _render_on(
        self,
        url: str,
        template: dict[str, Any],
        request: RenderRequest,
        seeds: list[int],
        index: int,
        mux: PreviewMux,
        progress: ProgressCallback | None,
    ) -> list[RenderedImage]:
        """One prompt of len(seeds) images on `url`; ComfyUI gives image i seed + i's place."""
        values = await self._values(url, template, request, seeds[0], len(seeds))
        if request.init_image is not None:
            values["image"] = await self._client.upload(url, request.init_image)
            strength = DEFAULT_STRENGTH if request.strength is None else request.strength
            values["strength"] = float(strength)
        workflow = fill_workflow(template, values)
        entry = await self._run(url, workflow, seed_label(seeds), index, mux, progress)
        images = []
        for file, seed in zip(output_files(entry, workflow, len(seeds)), seeds, strict=True):
            data = await self._client.view(url, file)
            images.append(RenderedImage(data=data, seed=seed, format=image_format(data)))
        return images

    async def _values(
        self, url: str, template: dict[str, Any], request: RenderRequest, seed: int, count: int
    ) -> dict[str, Any]:
        settings = request.settings
        sampler, scheduler = comfy_sampler(str(settings.get("sampler") or "euler"))
        values: dict[str, Any] = {
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt,
            "width": request.size.width,
            "height": request.size.height,
            "seed": seed,
            "batch_size": count,
            "steps": self._steps(request),
            "cfg": float(settings.get("cfg_scale", settings.get("cfg", 7.0))),
            "sampler": str(settings.get("sampler_name") or sampler),
            "scheduler": str(settings.get("scheduler") or scheduler),
            "checkpoint": "",
        }
        if "checkpoint" in placeholders_in(template):
            wanted = request.model if request.model and request.model != self.model else None
            values["checkpoint"] = wanted or self._checkpoint or await self._first_checkpoint(url)
        return values

    async def _first_checkpoint(self, url: str) -> str:
        """The first checkpoint the server lists, when COMFYUI_CHECKPOINT names none."""
        if url not in self._found:
            names = await self._client.options(url, "CheckpointLoaderSimple", "ckpt_name")
            if not names:
                raise ProviderError(
                    PROVIDER_ID,
                    f"ComfyUI at {host_of(url)} has no checkpoint in models/checkpoints; "
                    "install one or set COMFYUI_CHECKPOINT",
                )
            self._found[url] = names[0]
        return self._found[url]

    async def _run(
        self,
        url: str,
        workflow: dict[str, Any],
        label: str,
        index: int,
        mux: PreviewMux | None,
        progress: ProgressCallback | None,
    ) -> dict[str, Any]:
        """Queue `workflow`, follow it to the end and return its history entry."""
        client_id = uuid.uuid4().hex
        # Connect before queueing, as ComfyUI's own example does, so no message is missed.
        ws = await self._client.connect(url, client_id) if self._use_websocket else None
        watch: PromptWatch | None = None
        try:
            prompt_id = await self._client.queue(url, workflow, client_id)
            watch = PromptWatch(
                self._client, url, prompt_id, label, index, self._times, progress, mux
            )
            followed = await watch.follow(ws) if ws is not None else False
            return await watch.result(polling=not followed)
        except (asyncio.CancelledError, Unavailable):
            # Out of time, cancelled or hung: do not leave our prompt to run for nobody.
            if watch is not None:
                await self._client.forget(url, watch.prompt_id, watch.running)
            raise
        finally:
            if ws is not None:
                await ws.close()

    # ------------------------------------------------------------------ upscale

    async def upscale(self, image: bytes, scale: int = 2) -> UpscaledImage:
        """`image` at exactly `scale` times its size: the server's upscale model, else Lanczos."""
        width, height = pixel_size(image, "the picture to upscale")
        budget = Budget(self._timeout or UPSCALE_BUDGET)

        async def on_pool() -> UpscaledImage:
            return await self._pool.run(
                lambda url: self._upscale_on(url, image, scale, width * scale, height * scale)
            )

        return await retry_within(
            on_pool, budget, attempts=self._attempts, base_delay=self._base_delay,
            provider=PROVIDER_ID, what="the upscale",
        )  # fmt: skip

    async def _upscale_on(
        self, url: str, image: bytes, scale: int, width: int, height: int
    ) -> UpscaledImage:
        if url not in self._upscale_models:
            names = await self._client.options(url, "UpscaleModelLoader", "model_name")
            self._upscale_models[url] = names[0] if names else None
        model = self._upscale_models[url]
        values = {
            "image": await self._client.upload(url, image),
            "upscale_model": model or "",
            "width": width,
            "height": height,
            "scale": float(scale),
        }
        workflow = fill_workflow(self._upscale["model" if model else "resize"], values)
        entry = await self._run(url, workflow, "the upscale", 0, None, None)
        [file] = output_files(entry, workflow, 1)
        data = await self._client.view(url, file)
        got = pixel_size(data, f"the upscale ComfyUI at {host_of(url)} sent")
        upscaler = f"{model} (ComfyUI)" if model else f"{RESIZE_METHOD} (ComfyUI ImageScaleBy)"
        return UpscaledImage(data, got[0], got[1], upscaler=upscaler, format=image_format(data))
