"""A loopback fake of a ComfyUI server: /prompt, /ws, /history, /view, /upload/image, /queue,
/interrupt, /object_info, /system_stats, also under /api like the real one.

Graphs are validated and run by tests.fakes.comfyui_graph (400 {"error", "node_errors"} as
ComfyUI's validate_prompt words it). Prompts run one at a time on one simulated GPU, each
sampling step of a batch of n costing `step_delay x (1 + 0.4 (n - 1))` (the WebUI fake's model,
tests.fakes.webui_server.batch_seconds). The websocket carries ComfyUI's JSON events to the
submitting client id and, with `previews=True`, binary preview frames framed as the real server
frames them: 4-byte big-endian event 1 (PREVIEW_IMAGE), 4-byte format 1 (JPEG), the JPEG.

    async with FakeComfyUI(step_delay=0.01) as fake:
        provider = ComfyUIProvider(session, [fake.url])
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.comfyui_gpu import FakeGPU
from tests.fakes.comfyui_graph import (
    error,
    node_specs,
    object_info,
    picture,
    png,
    validate,
)
from tests.fakes.loopback import listen

CHECKPOINTS = ("v1-5-pruned-emaonly.safetensors", "sd_xl_base_1.0.safetensors")
SAMPLERS = ("euler", "euler_ancestral", "heun", "dpm_2", "dpm_2_ancestral", "lms", "dpm_fast",
            "dpm_adaptive", "dpmpp_2s_ancestral", "dpmpp_sde", "dpmpp_2m", "dpmpp_2m_sde",
            "dpmpp_3m_sde", "ddim", "uni_pc", "lcm")  # fmt: skip
SCHEDULERS = ("normal", "karras", "exponential", "sgm_uniform", "simple", "ddim_uniform")


def make_png(width: int, height: int, seed: int) -> bytes:
    """A real PNG of width x height whose colour follows the seed."""
    return png(picture(width, height, seed))


@dataclass
class LoggedRequest:
    """One request the fake received, with when (time.monotonic())."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    at: float


@dataclass
class FakeComfyUI(FakeGPU):
    """The fake server; `async with` starts it on 127.0.0.1 at a random port."""

    checkpoints: tuple[str, ...] = CHECKPOINTS
    upscale_models: tuple[str, ...] = ()  # files in models/upscale_models
    step_delay: float = 0.0  # GPU seconds per sampling step of one image
    latency: float = 0.0  # added before every HTTP answer
    previews: bool = False  # started with --preview-method: a preview frame after each step
    frozen: bool = False  # a wedged process: connections accepted, nothing ever answered
    stalled: bool = False  # the GPU takes the next prompt and never finishes a step
    newer_object_info: bool = False  # ["COMBO", {"options": [...]}] instead of [[...], {...}]
    requests: list[LoggedRequest] = field(default_factory=list)
    prompts: list[dict] = field(default_factory=list)  # every workflow accepted, in order
    ws_sent: list[dict] = field(default_factory=list)  # every JSON event sent on a websocket
    previews_sent: list[bytes] = field(default_factory=list)  # every binary frame sent
    history: dict[str, dict] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)  # "type/subfolder/name" -> bytes
    uploads: list[dict] = field(default_factory=list)  # every /upload/image: name and fields
    gpu_jobs: int = 0  # prompts the GPU ran to the end
    _failures: list[str] = field(default_factory=list)
    _exec_errors: list[str] = field(default_factory=list)
    _queue: asyncio.Queue | None = None
    _pending: list[str] = field(default_factory=list)
    _running: str | None = None
    _sockets: dict[str, web.WebSocketResponse] = field(default_factory=dict)
    _runner: web.AppRunner | None = None
    _worker: asyncio.Task | None = None
    _closing: asyncio.Event = field(default_factory=asyncio.Event)
    _port: int = 0
    _number: int = 0
    _interrupted: bool = False

    async def __aenter__(self) -> FakeComfyUI:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Listen on 127.0.0.1 (the same port again after a kill)."""
        app = web.Application(middlewares=[self._middleware])
        routes = [
            ("POST", "/prompt", self._post_prompt), ("GET", "/prompt", self._get_prompt),
            ("GET", "/history/{prompt_id}", self._get_history),
            ("GET", "/history", self._get_all_history), ("GET", "/view", self._view),
            ("POST", "/upload/image", self._upload),
            ("GET", "/ws", self._ws), ("GET", "/queue", self._get_queue),
            ("POST", "/queue", self._post_queue), ("POST", "/interrupt", self._interrupt),
            ("GET", "/system_stats", self._system_stats),
            ("GET", "/object_info", self._object_info),
            ("GET", "/object_info/{node_class}", self._object_info),
        ]  # fmt: skip
        for method, path, handler in routes:
            app.router.add_route(method, path, handler)
            app.router.add_route(method, "/api" + path, handler)  # ComfyUI serves both
        self._closing = asyncio.Event()
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._work())
        self._runner, self._port = await listen(app, self._port)

    async def stop(self) -> None:
        """Shut down; open websockets and hanging requests are dropped."""
        self._closing.set()
        if self._worker:
            self._worker.cancel()
            self._worker = None
        for ws in list(self._sockets.values()):
            await ws.close()
        self._sockets.clear()
        if self._runner:
            await self._runner.cleanup()
            self._runner = None

    kill = stop  # connections refused afterwards, like a crashed process

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def fail_next(self, count: int = 1, kind: str = "500") -> None:
        """The next `count` POST /prompt calls fail: "500", "node_errors" or "malformed"."""
        if kind not in ("500", "node_errors", "malformed"):
            raise ValueError(kind)
        self._failures.extend([kind] * count)

    def fail_execution(self, message: str = "CUDA out of memory") -> None:
        """The next prompt to run raises in KSampler (execution_error)."""
        self._exec_errors.append(message)

    def logged(self, path: str, method: str | None = None) -> list[LoggedRequest]:
        return [r for r in self.requests if r.path == path and method in (None, r.method)]

    def specs(self) -> dict[str, Any]:
        inputs = tuple(sorted(k.split("/", 2)[2] for k in self.files if k.startswith("input/")))
        return node_specs(self.checkpoints, SAMPLERS, SCHEDULERS, inputs, self.upscale_models)

    # ------------------------------------------------------------------ HTTP

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        payload = None
        if request.can_read_body and request.content_type == "application/json":
            try:
                payload = json.loads(await request.read() or b"null")
            except ValueError:
                payload = None
        path = request.path.removeprefix("/api")
        self.requests.append(
            LoggedRequest(request.method, path, dict(request.query), payload, time.monotonic())
        )
        if self.frozen:
            await self._closing.wait()
            return web.Response(status=503)
        if self.latency and path != "/ws":
            await asyncio.sleep(self.latency)
        return await handler(request)

    async def _post_prompt(self, request: web.Request) -> web.Response:
        try:
            data = await request.json()
        except ValueError:
            return web.json_response({"error": "invalid json", "node_errors": []}, status=400)
        if self._failures:
            kind = self._failures.pop(0)
            if kind == "500":
                return web.Response(status=500, text="500 Internal Server Error")
            if kind == "malformed":
                return web.Response(text="{not json", content_type="application/json")
            return web.json_response(self._node_error_body(), status=400)
        prompt = data.get("prompt") if isinstance(data, dict) else None
        if not isinstance(prompt, dict):
            return web.json_response({"error": "no prompt", "node_errors": []}, status=400)
        invalid = validate(prompt, self.specs())
        if invalid is not None:
            return web.json_response(invalid, status=400)
        prompt_id = str(uuid.uuid4())
        number = self._number
        self._number += 1
        self.prompts.append(prompt)
        self._pending.append(prompt_id)
        assert self._queue is not None
        await self._queue.put((number, prompt_id, prompt, data.get("client_id")))
        return web.json_response({"prompt_id": prompt_id, "number": number, "node_errors": {}})

    def _node_error_body(self) -> dict[str, Any]:
        problem = error(
            "value_not_in_list", "Value not in list", "ckpt_name: 'missing.safetensors' not in []"
        )
        head = error("prompt_outputs_failed_validation", "Prompt outputs failed validation", "")
        return {"error": head, "node_errors": {"4": {"errors": [problem], "dependent_outputs":
                ["9"], "class_type": "CheckpointLoaderSimple"}}}  # fmt: skip

    async def _upload(self, request: web.Request) -> web.Response:
        """server.py's image_upload: multipart image, overwrite, type, subfolder."""
        post = await request.post()
        image = post.get("image")
        if not isinstance(image, web.FileField) or not image.filename:
            return web.Response(status=400)
        kind = str(post.get("type") or "input")
        subfolder = str(post.get("subfolder") or "")
        if kind not in ("input", "temp", "output") or ".." in subfolder or "/" in image.filename:
            return web.Response(status=400)
        data = image.file.read()
        name = image.filename
        stem, _, ext = name.rpartition(".")
        number = 1
        while (
            str(post.get("overwrite")).lower() != "true"
            and f"{kind}/{subfolder}/{name}" in self.files
            and hashlib.sha256(self.files[f"{kind}/{subfolder}/{name}"]).digest()
            != hashlib.sha256(data).digest()
        ):
            name = f"{stem} ({number}).{ext}"
            number += 1
        self.files[f"{kind}/{subfolder}/{name}"] = data
        self.uploads.append({"name": name, "type": kind, "subfolder": subfolder,
                             "overwrite": str(post.get("overwrite"))})  # fmt: skip
        return web.json_response({"name": name, "subfolder": subfolder, "type": kind})

    async def _get_prompt(self, request: web.Request) -> web.Response:
        return web.json_response({"exec_info": {"queue_remaining": self._remaining()}})

    async def _get_history(self, request: web.Request) -> web.Response:
        prompt_id = request.match_info["prompt_id"]
        entry = self.history.get(prompt_id)
        return web.json_response({prompt_id: entry} if entry else {})

    async def _get_all_history(self, request: web.Request) -> web.Response:
        return web.json_response(self.history)

    async def _view(self, request: web.Request) -> web.Response:
        name = request.query.get("filename", "")
        if not name or name.startswith("/") or ".." in name:
            return web.Response(status=400)
        key = f"{request.query.get('type', 'output')}/{request.query.get('subfolder', '')}/{name}"
        if key not in self.files:
            return web.Response(status=404)
        return web.Response(body=self.files[key], content_type="image/png",
                            headers={"Content-Disposition": f'filename="{name}"'})  # fmt: skip

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sid = request.query.get("clientId") or uuid.uuid4().hex
        self._sockets[sid] = ws
        try:
            await self._send(sid, "status", {"status": self._status(), "sid": sid})
            async for message in ws:
                if message.type == WSMsgType.ERROR:
                    break
        finally:
            if self._sockets.get(sid) is ws:
                del self._sockets[sid]
        return ws

    async def _get_queue(self, request: web.Request) -> web.Response:
        running = [[0, self._running, {}, {}, []]] if self._running else []
        pending = [[i + 1, pid, {}, {}, []] for i, pid in enumerate(self._pending)]
        return web.json_response({"queue_running": running, "queue_pending": pending})

    async def _post_queue(self, request: web.Request) -> web.Response:
        data = await request.json()
        for prompt_id in data.get("delete") or []:
            if prompt_id in self._pending:
                self._pending.remove(prompt_id)
        if data.get("clear"):
            self._pending.clear()
        return web.Response(status=200)

    async def _interrupt(self, request: web.Request) -> web.Response:
        data = await request.json() if request.can_read_body else {}
        wanted = (data or {}).get("prompt_id")
        if self._running and wanted in (None, self._running):
            self._interrupted = True
        return web.Response(status=200)

    async def _system_stats(self, request: web.Request) -> web.Response:
        return web.json_response({
            "system": {"os": "posix", "comfyui_version": "0.3.40", "python_version": "3.11.9",
                       "argv": ["main.py", "--listen"]},
            "devices": [{"name": "cuda:0 Fake GPU", "type": "cuda", "index": 0,
                         "vram_total": 2**34, "vram_free": 2**33}],
        })  # fmt: skip

    async def _object_info(self, request: web.Request) -> web.Response:
        info = object_info(self.specs(), newer=self.newer_object_info)
        wanted = request.match_info.get("node_class")
        if wanted:
            return web.json_response({wanted: info[wanted]} if wanted in info else {})
        return web.json_response(info)


__all__ = ["CHECKPOINTS", "FakeComfyUI", "LoggedRequest", "make_png"]
