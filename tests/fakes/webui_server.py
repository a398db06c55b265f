"""A loopback fake of the AUTOMATIC1111 WebUI API (/sdapi/v1/...), one simulated GPU.

It validates txt2img/img2img payloads like the real FastAPI model (422 {"detail": [...]}),
renders real PNGs of the asked size, answers `info` as the JSON string A1111 sends, upscales with
extra-single-image, shows live previews in /progress, and can be told to run without --api,
fail, hang, freeze, send broken JSON or die mid-batch.

One GPU, honestly: jobs run one at a time, and a batch of n costs
`latency x (1 + 0.4 (n - 1))` (providers.budget.BATCH_FACTOR: the fixed work of a job is shared
and a GPU with spare width runs the extra latents side by side; an assumption, not a law).

    async with FakeWebUI(latency=1.0) as fake:
        provider = WebUIProvider(session, [fake.url])
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import random
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackServer
from tests.fakes.webui_models import (
    DEFAULTS,
    FIELD_TYPES,
    MAX_PIXELS,
    SAMPLERS,
    SCHEDULER_SUFFIXES,
    UPSCALERS,
    http_exception,
    make_png,
    render_info,
    resized_png,
    type_error,
    upscaler_items,
)

CHECKPOINT = "v1-5-pruned-emaonly.safetensors [6ce0161689]"
BATCH_FACTOR = 0.4


def batch_seconds(latency: float, batch_size: int, n_iter: int = 1) -> float:
    """GPU time of one job: each of n_iter batches costs latency x (1 + 0.4 (n - 1))."""
    return latency * (1 + BATCH_FACTOR * (batch_size - 1)) * n_iter


@dataclass
class LoggedRequest:
    """One request the fake received."""

    method: str
    path: str
    json: Any
    port: int


@dataclass
class FakeWebUI(LoopbackServer):
    """The fake server; `async with` starts it on 127.0.0.1 at a random port."""

    latency: float = 0.0  # seconds of GPU time for one image
    api: bool = True  # False: the WebUI was started without --api
    checkpoint: str = CHECKPOINT
    hang_seconds: float = 30.0
    live_previews: bool = True  # the "Live previews" setting: current_image in /progress
    upscalers: tuple[tuple[str, int], ...] = UPSCALERS
    requests: list[LoggedRequest] = field(default_factory=list)
    active: int = 0  # render requests open now
    max_concurrent: int = 0  # the most render requests seen open at once
    images_rendered: int = 0
    jobs: int = 0  # GPU jobs run (a batched request is one job)
    frozen: bool = False  # every route accepts the connection and never answers
    _failures: list[str] = field(default_factory=list)
    _gpu: asyncio.Lock = field(default_factory=asyncio.Lock)
    _open: dict[int, tuple[web.Request, asyncio.Task | None]] = field(default_factory=dict)
    _job: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        LoopbackServer.__init__(self)

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024**2, middlewares=[self._freezer])
        app.router.add_post("/sdapi/v1/txt2img", self._txt2img)
        app.router.add_post("/sdapi/v1/img2img", self._img2img)
        app.router.add_post("/sdapi/v1/extra-single-image", self._extra_single_image)
        app.router.add_get("/sdapi/v1/upscalers", self._upscalers)
        app.router.add_get("/sdapi/v1/sd-models", self._sd_models)
        app.router.add_get("/sdapi/v1/samplers", self._samplers)
        app.router.add_get("/sdapi/v1/progress", self._progress)
        app.router.add_get("/sdapi/v1/options", self._options)
        app.router.add_get("/", self._gradio_root)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        return app

    async def kill(self) -> None:
        """Die like a crashed process: open connections reset, new ones refused."""
        for request, task in list(self._open.values()):
            if request.transport is not None:
                request.transport.abort()
            if task is not None:
                task.cancel()  # a dead process finishes nothing
        await self.stop()

    restart = LoopbackServer.start  # the same port again after a kill, so a pool sees it return

    def fail_next(self, count: int = 1, kind: str = "500") -> None:
        """The next `count` render calls fail: "500", "oom", "hang" or "malformed"."""
        if kind not in ("500", "oom", "hang", "malformed"):
            raise ValueError(kind)
        self._failures.extend([kind] * count)

    def payloads(self, endpoint: str) -> list[dict]:
        return [r.json for r in self.requests if r.path == f"/sdapi/v1/{endpoint}"]

    @property
    def txt2img_payloads(self) -> list[dict]:
        return self.payloads("txt2img")

    # ------------------------------------------------------------------ handlers

    @web.middleware
    async def _freezer(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.frozen:  # a wedged process: the socket accepts, nothing ever answers
            self._log(request)
            try:
                await asyncio.wait_for(self.closing.wait(), self.hang_seconds)
            except TimeoutError:
                pass
            return http_exception(500, "frozen server released")
        return await handler(request)

    def _log(self, request: web.Request, payload: Any = None) -> None:
        self.requests.append(LoggedRequest(request.method, request.path, payload, self._port))

    def _api_missing(self) -> web.Response:
        return web.json_response({"detail": "Not Found"}, status=404)

    async def _not_found(self, request: web.Request) -> web.Response:
        self._log(request)
        return self._api_missing()  # FastAPI's answer to any unknown path

    async def _gradio_root(self, request: web.Request) -> web.Response:
        return web.Response(text="<!DOCTYPE html><title>Stable Diffusion</title>")

    async def _txt2img(self, request: web.Request) -> web.StreamResponse:
        return await self._tracked(request, "txt2img")

    async def _img2img(self, request: web.Request) -> web.StreamResponse:
        return await self._tracked(request, "img2img")

    async def _tracked(self, request: web.Request, mode: str) -> web.StreamResponse:
        self._open[id(request)] = (request, asyncio.current_task())
        self.active += 1
        self.max_concurrent = max(self.max_concurrent, self.active)
        try:
            return await self._render(request, mode)
        finally:
            self.active -= 1
            self._open.pop(id(request), None)

    async def _payload(self, request: web.Request) -> dict | web.Response:
        """The JSON body as FastAPI parses it, or its 422 answer."""
        raw = await request.read()
        if not self.api:
            self._log(request, None)
            return self._api_missing()
        try:
            payload = json.loads(raw)
        except ValueError as exc:
            self._log(request, None)
            detail = [{"type": "json_invalid", "loc": ["body", 0], "msg": "JSON decode error",
                       "input": {}, "ctx": {"error": str(exc)}}]  # fmt: skip
            return web.json_response({"detail": detail}, status=422)
        self._log(request, payload)
        if not isinstance(payload, dict):
            detail = [{"type": "model_attributes_type", "loc": ["body"],
                       "msg": "Input should be a valid dictionary or object to extract fields from",
                       "input": payload}]  # fmt: skip
            return web.json_response({"detail": detail}, status=422)
        return payload

    async def _render(self, request: web.Request, mode: str) -> web.StreamResponse:
        payload = await self._payload(request)
        if isinstance(payload, web.Response):
            return payload
        errors = [e for k, t in FIELD_TYPES.items() if (e := type_error(k, t, payload.get(k)))]
        if errors:
            return web.json_response({"detail": errors}, status=422)
        args = {**DEFAULTS, **{k: v for k, v in payload.items() if v is not None}}
        if mode == "img2img":
            problem = self._init_problem(args.get("init_images"))
            if problem is not None:
                return problem
        sampler = self._sampler(args.get("sampler_name") or args.get("sampler_index"))
        if sampler is None:
            return http_exception(404, "Sampler not found")
        if self._failures:
            return await self._fail(self._failures.pop(0))
        width, height = int(args["width"]) // 8 * 8, int(args["height"]) // 8 * 8
        batch_size, n_iter = int(args["batch_size"]), int(args["n_iter"])
        count = batch_size * n_iter
        if width * height * batch_size > MAX_PIXELS:
            return await self._fail("oom")
        seed = int(args["seed"])
        if seed == -1:
            seed = random.randrange(2**32)
        seeds = [seed + i for i in range(count)]
        async with self._gpu:  # one GPU: requests queue behind each other
            length = batch_seconds(self.latency, batch_size, n_iter)
            self._job = {"mode": mode, "started": time.monotonic(), "length": length,
                         "seed": seed, "width": width, "height": height}  # fmt: skip
            try:
                await asyncio.sleep(length)
            finally:
                self._job = None
        self.jobs += 1
        self.images_rendered += count
        info = render_info(args, sampler, seeds, width, height, self.checkpoint)
        images = []
        if args.get("send_images", True):
            images = [
                base64.b64encode(make_png(width, height, s, f"Seed: {s}")).decode() for s in seeds
            ]
        return web.json_response({"images": images, "parameters": args, "info": json.dumps(info)})

    def _init_problem(self, images: Any) -> web.Response | None:
        """A1111's answers to a missing or undecodable init image."""
        if not images:
            return http_exception(404, "Init image not found")
        for text in images:
            try:
                data = base64.b64decode(str(text).split(",", 1)[-1], validate=True)
            except (binascii.Error, ValueError):
                return http_exception(500, "Invalid encoded image")
            if not data.startswith((b"\x89PNG", b"\xff\xd8", b"RIFF")):
                return http_exception(500, "Invalid encoded image")
        return None

    async def _extra_single_image(self, request: web.Request) -> web.StreamResponse:
        payload = await self._payload(request)
        if isinstance(payload, web.Response):
            return payload
        names = [name for name, _ in self.upscalers]
        upscaler = payload.get("upscaler_1", "None")
        if upscaler not in names:
            detail = f"Invalid upscaler, needs to be one of these: {' , '.join(names)}"
            return http_exception(400, detail)
        try:
            data = base64.b64decode(str(payload.get("image", "")).split(",", 1)[-1], validate=True)
            factor = float(payload.get("upscaling_resize", 2))
            picture, width, height = resized_png(data, factor)
        except (binascii.Error, ValueError, OSError):
            return http_exception(500, "Invalid encoded image")
        async with self._gpu:
            await asyncio.sleep(self.latency)
        self.jobs += 1
        html = f"<p>Postprocess upscale by: {factor:g}, Postprocess upscaler: {upscaler}</p>"
        return web.json_response({"html_info": html, "image": base64.b64encode(picture).decode()})

    async def _upscalers(self, request: web.Request) -> web.Response:
        self._log(request)
        if not self.api:
            return self._api_missing()
        return web.json_response(upscaler_items(self.upscalers))

    def _sampler(self, name: str) -> str | None:
        for suffix in SCHEDULER_SUFFIXES:
            if name.endswith(" " + suffix):
                name = name[: -len(suffix) - 1]
                break
        for real, aliases in SAMPLERS:
            if name == real or name in aliases:
                return real
        return None

    async def _fail(self, kind: str) -> web.StreamResponse:
        if kind == "500":
            body = {"error": "RuntimeError", "detail": "", "body": "",
                    "errors": "Expected all tensors to be on the same device"}  # fmt: skip
            return web.json_response(body, status=500)
        if kind == "oom":
            body = {"error": "OutOfMemoryError", "detail": "", "body": "",
                    "errors": "CUDA out of memory. Tried to allocate 5.00 GiB"}  # fmt: skip
            return web.json_response(body, status=500)
        if kind == "hang":  # the request is stuck, the rest of the server still answers
            try:
                await asyncio.wait_for(self.closing.wait(), self.hang_seconds)
            except TimeoutError:
                pass
            return http_exception(500, "hung request released")
        return web.Response(text='{"images": ["iVBOR', content_type="application/json")

    async def _sd_models(self, request: web.Request) -> web.Response:
        self._log(request)
        if not self.api:
            return self._api_missing()
        name, _, short_hash = self.checkpoint.partition(" [")
        item = {
            "title": self.checkpoint,
            "model_name": name.rsplit(".", 1)[0],
            "hash": short_hash.rstrip("]") or None,
            "sha256": None,
            "filename": f"/webui/models/Stable-diffusion/{name}",
            "config": None,
        }
        return web.json_response([item])

    async def _samplers(self, request: web.Request) -> web.Response:
        self._log(request)
        if not self.api:
            return self._api_missing()
        return web.json_response(
            [{"name": name, "aliases": aliases, "options": {}} for name, aliases in SAMPLERS]
        )

    async def _progress(self, request: web.Request) -> web.Response:
        self._log(request)
        if not self.api:
            return self._api_missing()
        job, progress, eta, image = self._job, 0.0, 0.0, None
        if job is not None and job["length"] > 0:
            elapsed = time.monotonic() - job["started"]
            progress = min(0.01 + elapsed / job["length"], 1.0)
            eta = max(job["length"] - elapsed, 0.0)
            skip = request.query.get("skip_current_image", "false").lower() == "true"
            if self.live_previews and not skip:
                # A new preview every quarter of the job, as "show every N steps" would.
                stage = int(progress * 4)
                preview = make_png(64, 64, job["seed"] * 10 + stage, f"preview {stage}")
                image = base64.b64encode(preview).decode()
        state = {
            "skipped": False,
            "interrupted": False,
            "stopping_generation": False,
            "job": f"scripts_{job['mode']}" if job is not None else "",
            "job_count": 1 if job is not None else 0,
            "job_timestamp": "0",
            "job_no": 0,
            "sampling_step": 0,
            "sampling_steps": 0,
        }
        return web.json_response(
            {
                "progress": progress,
                "eta_relative": eta,
                "state": state,
                "current_image": image,
                "textinfo": None,
            }  # fmt: skip
        )

    async def _options(self, request: web.Request) -> web.Response:
        self._log(request)
        if not self.api:
            return self._api_missing()
        return web.json_response(
            {
                "sd_model_checkpoint": self.checkpoint,
                "samples_format": "png",
                "sd_checkpoint_hash": None,
                "CLIP_stop_at_last_layers": 1,
            }  # fmt: skip
        )


def free_port() -> int:
    """A port nothing listens on (for connection-refused tests)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


__all__ = ["CHECKPOINT", "FakeWebUI", "LoggedRequest", "batch_seconds", "free_port", "make_png"]
