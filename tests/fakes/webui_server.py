"""A loopback fake of the AUTOMATIC1111 WebUI API (/sdapi/v1/...), one simulated GPU.

It validates txt2img payloads like the real FastAPI model (422 {"detail": [...]}), renders real
PNGs of the asked size, answers `info` as the JSON string A1111 sends, and can be told to run
without --api, fail, hang, send broken JSON or die mid-batch. Requests render one at a time
(one GPU), each taking `latency` seconds per image. Used by tests and bench/ scripts:

    async with FakeWebUI(latency=1.0) as fake:
        provider = WebUIProvider(session, [fake.url])
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import socket
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.loopback import listen

CHECKPOINT = "v1-5-pruned-emaonly.safetensors [6ce0161689]"
SAMPLERS = (
    ("DPM++ 2M", ["k_dpmpp_2m"]),
    ("DPM++ SDE", ["k_dpmpp_sde"]),
    ("DPM++ 2M SDE", ["k_dpmpp_2m_sde"]),
    ("DPM++ 2S a", ["k_dpmpp_2s_a"]),
    ("Euler a", ["k_euler_a"]),
    ("Euler", ["k_euler"]),
    ("LMS", ["k_lms"]),
    ("Heun", ["k_heun"]),
    ("DPM2", ["k_dpm_2"]),
    ("DPM2 a", ["k_dpm_2_a"]),
    ("DDIM", []),
    ("UniPC", []),
)
# Since 1.9 a scheduler suffix on the sampler name ("DPM++ 2M Karras") is split off.
SCHEDULER_SUFFIXES = ("Karras", "Exponential", "SGM Uniform", "Uniform", "Polyexponential")
# The pydantic model types every field Optional[...]; these are the ones a client sends.
FIELD_TYPES: dict[str, str] = {
    "prompt": "str", "negative_prompt": "str", "styles": "list", "seed": "int",
    "subseed": "int", "subseed_strength": "float", "seed_resize_from_h": "int",
    "seed_resize_from_w": "int", "sampler_name": "str", "sampler_index": "str",
    "scheduler": "str", "batch_size": "int", "n_iter": "int", "steps": "int",
    "cfg_scale": "float", "width": "int", "height": "int", "restore_faces": "bool",
    "tiling": "bool", "enable_hr": "bool", "denoising_strength": "float", "eta": "float",
    "override_settings": "dict", "override_settings_restore_afterwards": "bool",
    "script_name": "str", "script_args": "list", "send_images": "bool", "save_images": "bool",
    "alwayson_scripts": "dict",
}  # fmt: skip
DEFAULTS: dict[str, Any] = {
    "prompt": "", "negative_prompt": "", "seed": -1, "subseed": -1, "subseed_strength": 0,
    "sampler_name": None, "sampler_index": "Euler", "scheduler": None, "batch_size": 1,
    "n_iter": 1, "steps": 50, "cfg_scale": 7.0, "width": 512, "height": 512,
    "override_settings": None, "send_images": True, "save_images": False,
}  # fmt: skip
MAX_PIXELS = 2048 * 2048 * 2  # past this the fake "GPU" runs out of memory, as a real one would


def make_png(width: int, height: int, seed: int, text: str = "") -> bytes:
    """A real, small PNG of width x height whose colour follows the seed."""
    rng = random.Random(seed)
    pixel = bytes(rng.randrange(256) for _ in range(3))
    raw = b"".join(b"\x00" + pixel * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + b"\x08\x02\x00\x00\x00"
    extra = chunk(b"tEXt", b"parameters\x00" + text.encode("latin-1", "replace")) if text else b""
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + extra
        + chunk(b"IDAT", zlib.compress(raw, 1))
        + chunk(b"IEND", b"")
    )


def _type_error(name: str, kind: str, value: Any) -> dict | None:
    """Pydantic v2 lax-mode check of one field; None when the value is acceptable."""
    if value is None:
        return None
    loc = ["body", name]
    if kind == "int":
        if isinstance(value, bool | int):
            return None
        if isinstance(value, float):
            if value.is_integer():
                return None
            msg = "Input should be a valid integer, got a number with a fractional part"
            return {"type": "int_from_float", "loc": loc, "msg": msg, "input": value}
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return None
        msg = "Input should be a valid integer, unable to parse string as an integer"
        return {"type": "int_parsing", "loc": loc, "msg": msg, "input": value}
    if kind == "float":
        if isinstance(value, bool | int | float):
            return None
        try:
            float(value)
            return None
        except (TypeError, ValueError):
            msg = "Input should be a valid number, unable to parse string as a number"
            return {"type": "float_parsing", "loc": loc, "msg": msg, "input": value}
    if kind == "str" and not isinstance(value, str):
        return {"type": "string_type", "loc": loc, "msg": "Input should be a valid string",
                "input": value}  # fmt: skip
    if kind == "bool" and not isinstance(value, bool) and value not in (0, 1):
        return {"type": "bool_type", "loc": loc, "msg": "Input should be a valid boolean",
                "input": value}  # fmt: skip
    if kind == "dict" and not isinstance(value, dict):
        return {"type": "dict_type", "loc": loc, "msg": "Input should be a valid dictionary",
                "input": value}  # fmt: skip
    if kind == "list" and not isinstance(value, list):
        return {"type": "list_type", "loc": loc, "msg": "Input should be a valid list",
                "input": value}  # fmt: skip
    return None


def _http_exception(status: int, detail: str) -> web.Response:
    """How A1111's api_middleware answers an HTTPException or a crash."""
    body = {"error": "HTTPException", "detail": detail, "body": "", "errors": f"{status}: {detail}"}
    return web.json_response(body, status=status)


@dataclass
class LoggedRequest:
    """One request the fake received."""

    method: str
    path: str
    json: Any
    port: int


@dataclass
class FakeWebUI:
    """The fake server; `async with` starts it on 127.0.0.1 at a random port."""

    latency: float = 0.0  # seconds per image on the one simulated GPU
    api: bool = True  # False: the WebUI was started without --api
    checkpoint: str = CHECKPOINT
    hang_seconds: float = 30.0
    requests: list[LoggedRequest] = field(default_factory=list)
    active: int = 0  # txt2img requests open now
    max_concurrent: int = 0  # the most txt2img requests seen open at once
    images_rendered: int = 0
    _failures: list[str] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _port: int = 0
    _gpu: asyncio.Lock = field(default_factory=asyncio.Lock)
    _closing: asyncio.Event = field(default_factory=asyncio.Event)
    _open: dict[int, tuple[web.Request, asyncio.Task | None]] = field(default_factory=dict)
    _job_started: float | None = None
    _job_length: float = 0.0

    async def __aenter__(self) -> FakeWebUI:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Listen on 127.0.0.1 (the same port again after a kill, so a pool sees it return)."""
        app = web.Application(client_max_size=64 * 1024**2)
        app.router.add_post("/sdapi/v1/txt2img", self._txt2img)
        app.router.add_get("/sdapi/v1/sd-models", self._sd_models)
        app.router.add_get("/sdapi/v1/samplers", self._samplers)
        app.router.add_get("/sdapi/v1/progress", self._progress)
        app.router.add_get("/sdapi/v1/options", self._options)
        app.router.add_get("/", self._gradio_root)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        self._closing = asyncio.Event()
        self._runner, self._port = await listen(app, self._port)

    async def stop(self) -> None:
        """Shut down; requests still open are dropped."""
        self._closing.set()
        if self._runner:
            await self._runner.cleanup()
            self._runner = None

    async def kill(self) -> None:
        """Die like a crashed process: open connections reset, new ones refused."""
        for request, task in list(self._open.values()):
            if request.transport is not None:
                request.transport.abort()
            if task is not None:
                task.cancel()  # a dead process finishes nothing
        await self.stop()

    restart = start

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def fail_next(self, count: int = 1, kind: str = "500") -> None:
        """The next `count` txt2img calls fail: "500", "oom", "hang" or "malformed"."""
        if kind not in ("500", "oom", "hang", "malformed"):
            raise ValueError(kind)
        self._failures.extend([kind] * count)

    @property
    def txt2img_payloads(self) -> list[dict]:
        return [r.json for r in self.requests if r.path == "/sdapi/v1/txt2img"]

    # ------------------------------------------------------------------ handlers

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
        self._open[id(request)] = (request, asyncio.current_task())
        self.active += 1
        self.max_concurrent = max(self.max_concurrent, self.active)
        try:
            return await self._render(request)
        finally:
            self.active -= 1
            self._open.pop(id(request), None)

    async def _render(self, request: web.Request) -> web.StreamResponse:
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
        errors = [e for k, t in FIELD_TYPES.items() if (e := _type_error(k, t, payload.get(k)))]
        if errors:
            return web.json_response({"detail": errors}, status=422)
        args = {**DEFAULTS, **{k: v for k, v in payload.items() if v is not None}}
        sampler = self._sampler(args.get("sampler_name") or args.get("sampler_index"))
        if sampler is None:
            return _http_exception(404, "Sampler not found")
        if self._failures:
            return await self._fail(self._failures.pop(0))
        width, height = int(args["width"]) // 8 * 8, int(args["height"]) // 8 * 8
        count = int(args["batch_size"]) * int(args["n_iter"])
        if width * height * int(args["batch_size"]) > MAX_PIXELS:
            return await self._fail("oom")
        seed = int(args["seed"])
        if seed == -1:
            seed = random.randrange(2**32)
        seeds = [seed + i for i in range(count)]
        async with self._gpu:  # one GPU: requests queue behind each other
            self._job_started, self._job_length = time.monotonic(), self.latency * count
            try:
                await asyncio.sleep(self.latency * count)
            finally:
                self._job_started = None
        self.images_rendered += count
        checkpoint = (args.get("override_settings") or {}).get("sd_model_checkpoint")
        info = {
            "prompt": args["prompt"],
            "all_prompts": [args["prompt"]] * count,
            "negative_prompt": args["negative_prompt"],
            "all_negative_prompts": [args["negative_prompt"]] * count,
            "seed": seeds[0],
            "all_seeds": seeds,
            "subseed": seeds[0] + 1,
            "all_subseeds": [s + 1 for s in seeds],
            "subseed_strength": args["subseed_strength"],
            "width": width,
            "height": height,
            "sampler_name": sampler,
            "cfg_scale": float(args["cfg_scale"]),
            "steps": int(args["steps"]),
            "batch_size": int(args["batch_size"]),
            "sd_model_name": (checkpoint or self.checkpoint).split(".")[0],
            "sd_model_hash": "6ce0161689",
            "index_of_first_image": 0,
            "infotexts": [f"{args['prompt']}\nSteps: {args['steps']}, Seed: {s}" for s in seeds],
            "styles": [],
            "clip_skip": 1,
        }
        images = []
        if args.get("send_images", True):
            images = [
                base64.b64encode(make_png(width, height, s, f"Seed: {s}")).decode() for s in seeds
            ]
        return web.json_response({"images": images, "parameters": args, "info": json.dumps(info)})

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
        if kind == "hang":
            try:
                await asyncio.wait_for(self._closing.wait(), self.hang_seconds)
            except TimeoutError:
                pass
            return _http_exception(500, "hung request released")
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
        progress, eta = 0.0, 0.0
        if self._job_started is not None and self._job_length > 0:
            elapsed = time.monotonic() - self._job_started
            progress = min(0.01 + elapsed / self._job_length, 1.0)
            eta = max(self._job_length - elapsed, 0.0)
        state = {
            "skipped": False,
            "interrupted": False,
            "stopping_generation": False,
            "job": "scripts_txt2img" if self._job_started is not None else "",
            "job_count": 1 if self._job_started is not None else 0,
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
                "current_image": None,
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


__all__ = ["FakeWebUI", "LoggedRequest", "free_port", "make_png"]
