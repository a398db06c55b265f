"""A loopback fake of a ComfyUI server: /prompt, /ws, /history, /view, /queue, /object_info.

It validates workflows like ComfyUI's validate_prompt (400 {"error": {...}, "node_errors": {...}}
with value_not_in_list for an unknown checkpoint, invalid_input_type for an unfilled number),
runs queued prompts one at a time (one GPU), sends the websocket events ComfyUI sends
(status, execution_start, executing, progress, executed, execution_success/execution_error)
to the submitting client id, stores history and serves real PNGs of the latent's size.

    async with FakeComfyUI(step_delay=0.01) as fake:
        provider = ComfyUIProvider(session, [fake.url])
"""

from __future__ import annotations

import asyncio
import io
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.loopback import listen

CHECKPOINTS = ("v1-5-pruned-emaonly.safetensors", "sd_xl_base_1.0.safetensors")
SAMPLERS = ("euler", "euler_ancestral", "heun", "dpm_2", "dpm_2_ancestral", "lms", "dpm_fast",
            "dpm_adaptive", "dpmpp_2s_ancestral", "dpmpp_sde", "dpmpp_2m", "dpmpp_2m_sde",
            "dpmpp_3m_sde", "ddim", "uni_pc", "lcm")  # fmt: skip
SCHEDULERS = ("normal", "karras", "exponential", "sgm_uniform", "simple", "ddim_uniform")
# Typed inputs the fake checks, as ComfyUI's INPUT_TYPES declare them.
TYPED_INPUTS: dict[str, dict[str, str]] = {
    "EmptyLatentImage": {"width": "INT", "height": "INT", "batch_size": "INT"},
    "KSampler": {"seed": "INT", "steps": "INT", "cfg": "FLOAT", "denoise": "FLOAT"},
    "CLIPTextEncode": {"text": "STRING"},
}
NODE_CLASSES = ("CheckpointLoaderSimple", "CLIPTextEncode", "EmptyLatentImage", "KSampler",
                "VAEDecode", "SaveImage", "PreviewImage", "LatentUpscale")  # fmt: skip


def make_png(width: int, height: int, seed: int) -> bytes:
    """A real PNG of width x height whose colour follows the seed."""
    from PIL import Image

    colour = (seed * 37 % 256, seed * 91 % 256, seed * 53 % 256)
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


@dataclass
class LoggedRequest:
    """One request the fake received, with when (time.monotonic())."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    at: float


def _error(kind: str, message: str, details: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "message": message, "details": details, "extra_info": extra}


@dataclass
class FakeComfyUI:
    """The fake server; `async with` starts it on 127.0.0.1 at a random port."""

    checkpoints: tuple[str, ...] = CHECKPOINTS
    step_delay: float = 0.0  # seconds per sampling step on the one simulated GPU
    latency: float = 0.0  # added before every HTTP answer
    newer_object_info: bool = False  # ["COMBO", {"options": [...]}] instead of [[...], {...}]
    requests: list[LoggedRequest] = field(default_factory=list)
    prompts: list[dict] = field(default_factory=list)  # every workflow accepted, in order
    ws_sent: list[dict] = field(default_factory=list)  # every JSON event sent on a websocket
    history: dict[str, dict] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    _failures: list[str] = field(default_factory=list)
    _exec_errors: list[str] = field(default_factory=list)
    _queue: asyncio.Queue | None = None
    _pending: list[str] = field(default_factory=list)
    _running: str | None = None
    _sockets: dict[str, web.WebSocketResponse] = field(default_factory=dict)
    _runner: web.AppRunner | None = None
    _worker: asyncio.Task | None = None
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
            ("GET", "/ws", self._ws), ("GET", "/queue", self._get_queue),
            ("POST", "/queue", self._post_queue), ("POST", "/interrupt", self._interrupt),
            ("GET", "/system_stats", self._system_stats),
            ("GET", "/object_info", self._object_info),
            ("GET", "/object_info/{node_class}", self._object_info),
        ]  # fmt: skip
        for method, path, handler in routes:
            app.router.add_route(method, path, handler)
            app.router.add_route(method, "/api" + path, handler)  # ComfyUI serves both
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._work())
        self._runner, self._port = await listen(app, self._port)

    async def stop(self) -> None:
        """Shut down; open websockets are dropped."""
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

    # ------------------------------------------------------------------ HTTP

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        payload = None
        if request.can_read_body:
            try:
                payload = json.loads(await request.read() or b"null")
            except ValueError:
                payload = None
        path = request.path.removeprefix("/api")
        self.requests.append(
            LoggedRequest(request.method, path, dict(request.query), payload, time.monotonic())
        )
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
            return web.json_response(self._node_error_body("CheckpointLoaderSimple"), status=400)
        prompt = data.get("prompt") if isinstance(data, dict) else None
        if not isinstance(prompt, dict):
            return web.json_response({"error": "no prompt", "node_errors": []}, status=400)
        invalid = self._validate(prompt)
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

    def _validate(self, prompt: dict[str, Any]) -> dict[str, Any] | None:
        for node_id, node in prompt.items():
            if not isinstance(node, dict) or node.get("class_type") not in NODE_CLASSES:
                kind = node.get("class_type") if isinstance(node, dict) else None
                return {
                    "error": _error(
                        "invalid_prompt",
                        f"Cannot execute because node {kind} does not exist.",
                        f"Node ID '#{node_id}'",
                    ),
                    "node_errors": {},
                }
        node_errors: dict[str, Any] = {}
        for node_id, node in prompt.items():
            errors = self._node_problems(node)
            if errors:
                node_errors[node_id] = {
                    "errors": errors, "dependent_outputs": [], "class_type": node["class_type"]
                }  # fmt: skip
        if not node_errors:
            if not any(n["class_type"] in ("SaveImage", "PreviewImage") for n in prompt.values()):
                return {
                    "error": _error("prompt_no_outputs", "Prompt has no outputs", ""),
                    "node_errors": [],
                }
            return None
        details = "\n".join(
            f"{e['message']}: {e['details']}" for n in node_errors.values() for e in n["errors"]
        )
        return {
            "error": _error(
                "prompt_outputs_failed_validation", "Prompt outputs failed validation", details
            ),
            "node_errors": node_errors,
        }

    def _node_problems(self, node: dict[str, Any]) -> list[dict[str, Any]]:
        inputs = node.get("inputs") or {}
        problems = []
        for name, kind in TYPED_INPUTS.get(node["class_type"], {}).items():
            value = inputs.get(name)
            if value is None or isinstance(value, list):  # absent, or a link to another node
                continue
            try:
                {"INT": int, "FLOAT": float, "STRING": str}[kind](value)
            except (TypeError, ValueError):
                problems.append(
                    _error(
                        "invalid_input_type",
                        f"Failed to convert an input value to a {kind} value",
                        f"{name}, {value}, invalid literal",
                        input_name=name,
                        received_value=value,
                    )  # fmt: skip
                )
        combos = {
            "CheckpointLoaderSimple": {"ckpt_name": self.checkpoints},
            "KSampler": {"sampler_name": SAMPLERS, "scheduler": SCHEDULERS},
        }.get(node["class_type"], {})
        for name, allowed in combos.items():
            value = inputs.get(name)
            if value not in allowed:
                problems.append(
                    _error(
                        "value_not_in_list",
                        "Value not in list",
                        f"{name}: '{value}' not in {list(allowed)}",
                        input_name=name,
                        received_value=value,
                    )  # fmt: skip
                )
        return problems

    def _node_error_body(self, class_type: str) -> dict[str, Any]:
        problem = _error(
            "value_not_in_list", "Value not in list", "ckpt_name: 'missing.safetensors' not in []"
        )
        return {
            "error": _error(
                "prompt_outputs_failed_validation", "Prompt outputs failed validation", ""
            ),
            "node_errors": {"4": {"errors": [problem], "dependent_outputs": ["9"],
                                  "class_type": class_type}},
        }  # fmt: skip

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
        return web.Response(
            body=self.files[key],
            content_type="image/png",
            headers={"Content-Disposition": f'filename="{name}"'},
        )

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
        pending = [[i, pid, {}, {}, []] for i, pid in enumerate(self._pending)]
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
        return web.json_response(
            {
                "system": {"os": "posix", "ram_total": 2**35, "ram_free": 2**34,
                           "comfyui_version": "0.3.40", "python_version": "3.11.9",
                           "pytorch_version": "2.5.1", "embedded_python": False,
                           "argv": ["main.py", "--listen"]},
                "devices": [{"name": "cuda:0 Fake GPU", "type": "cuda", "index": 0,
                             "vram_total": 2**34, "vram_free": 2**33,
                             "torch_vram_total": 0, "torch_vram_free": 0}],
            }
        )  # fmt: skip

    async def _object_info(self, request: web.Request) -> web.Response:
        wanted = request.match_info.get("node_class")
        names = list(self.checkpoints)
        spec: list[Any] = ["COMBO", {"options": names}] if self.newer_object_info else [names, {}]
        info = {
            "CheckpointLoaderSimple": {
                "input": {"required": {"ckpt_name": spec}},
                "input_order": {"required": ["ckpt_name"]},
                "output": ["MODEL", "CLIP", "VAE"],
                "name": "CheckpointLoaderSimple",
                "display_name": "Load Checkpoint",
                "category": "loaders",
                "output_node": False,
            }  # fmt: skip
        }
        if wanted:
            return web.json_response({wanted: info[wanted]} if wanted in info else {})
        return web.json_response(info)

    # ------------------------------------------------------------------ execution

    def _remaining(self) -> int:
        return len(self._pending) + (1 if self._running else 0)

    def _status(self) -> dict[str, Any]:
        return {"exec_info": {"queue_remaining": self._remaining()}}

    async def _send(self, sid: str | None, kind: str, data: dict[str, Any]) -> None:
        event = {"type": kind, "data": data}
        targets = [self._sockets[sid]] if sid in self._sockets else []
        if sid is None:
            targets = list(self._sockets.values())
        for ws in targets:
            self.ws_sent.append(event)
            try:
                await ws.send_str(json.dumps(event))
            except ConnectionError:
                pass

    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            number, prompt_id, prompt, sid = await self._queue.get()
            if prompt_id not in self._pending:
                continue  # deleted from the queue before it ran
            self._pending.remove(prompt_id)
            self._running = prompt_id
            try:
                await self._run(number, prompt_id, prompt, sid)
            finally:
                self._running = None
            await self._send(None, "status", {"status": self._status()})

    async def _run(self, number: int, prompt_id: str, prompt: dict, sid: str | None) -> None:
        started = int(time.time() * 1000)
        messages: list[list[Any]] = [["execution_start", {"prompt_id": prompt_id}]]
        await self._send(sid, "execution_start", {"prompt_id": prompt_id, "timestamp": started})
        latent = next((n["inputs"] for n in prompt.values()
                       if n["class_type"] == "EmptyLatentImage"), {})  # fmt: skip
        seed = next((int(n["inputs"].get("seed", 0)) for n in prompt.values()
                     if n["class_type"] == "KSampler"), 0)  # fmt: skip
        outputs: dict[str, Any] = {}
        for node_id, node in prompt.items():
            await self._send(
                sid, "executing", {"node": node_id, "display_node": node_id, "prompt_id": prompt_id}
            )
            if node["class_type"] == "KSampler":
                steps = int(node["inputs"].get("steps", 20))
                for step in range(1, steps + 1):
                    await asyncio.sleep(self.step_delay)
                    if self._interrupted:
                        self._interrupted = False
                        stopped = {"prompt_id": prompt_id, "node_id": node_id,
                                   "node_type": "KSampler", "executed": []}  # fmt: skip
                        messages.append(["execution_interrupted", stopped])
                        await self._send(sid, "execution_interrupted", stopped)
                        self._store(number, prompt_id, prompt, {}, "error", messages)
                        return
                    await self._send(
                        sid,
                        "progress",
                        {"value": step, "max": steps, "prompt_id": prompt_id, "node": node_id},
                    )
                    if sid in self._sockets and step == 1:  # a live preview frame
                        await self._sockets[sid].send_bytes(b"\x00\x00\x00\x01preview")
                if self._exec_errors:
                    error = {
                        "prompt_id": prompt_id, "node_id": node_id, "node_type": "KSampler",
                        "executed": [], "exception_message": self._exec_errors.pop(0),
                        "exception_type": "torch.OutOfMemoryError", "traceback": [],
                        "current_inputs": {}, "current_outputs": {},
                    }  # fmt: skip
                    messages.append(["execution_error", error])
                    await self._send(sid, "execution_error", error)
                    self._store(number, prompt_id, prompt, {}, "error", messages)
                    return
            if node["class_type"] in ("SaveImage", "PreviewImage"):
                kind = "output" if node["class_type"] == "SaveImage" else "temp"
                images = []
                for index in range(int(latent.get("batch_size", 1))):
                    name = f"imagebot_{number:05}_{index}_.png"
                    width, height = int(latent.get("width", 512)), int(latent.get("height", 512))
                    self.files[f"{kind}//{name}"] = make_png(width, height, seed + index)
                    images.append({"filename": name, "subfolder": "", "type": kind})
                outputs[node_id] = {"images": images}
                await self._send(sid, "executed", {"node": node_id, "display_node": node_id,
                                                   "output": {"images": images},
                                                   "prompt_id": prompt_id})  # fmt: skip
        await self._send(sid, "executing", {"node": None, "prompt_id": prompt_id})
        done = {"prompt_id": prompt_id, "timestamp": int(time.time() * 1000)}
        messages.append(["execution_success", done])
        await self._send(sid, "execution_success", done)
        self._store(number, prompt_id, prompt, outputs, "success", messages)

    def _store(self, number: int, prompt_id: str, prompt: dict, outputs: dict, status: str,
               messages: list) -> None:  # fmt: skip
        self.history[prompt_id] = {
            "prompt": [number, prompt_id, prompt, {}, list(outputs)],
            "outputs": outputs,
            "status": {"status_str": status, "completed": status == "success",
                       "messages": messages},
            "meta": {},
        }  # fmt: skip


__all__ = ["CHECKPOINTS", "FakeComfyUI", "LoggedRequest", "make_png"]
