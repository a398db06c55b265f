"""The fake ComfyUI's one GPU: runs queued prompts one at a time and reports them on /ws.

Each sampling step of a batch of n costs `step_delay x (1 + 0.4 (n - 1))`: the WebUI fake's
model (tests.fakes.webui_server.batch_seconds, providers.budget.BATCH_FACTOR), so both fakes
reward batching alike. Events follow ComfyUI's order: execution_start, executing per node,
progress per step (and a binary preview frame with `previews`), executed, execution_success,
the history entry stored, then `executing` with node None.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from typing import Any

from aiohttp import web

from tests.fakes.comfyui_graph import execute, picture, png
from tests.fakes.webui_server import batch_seconds

PREVIEW_FRAME = (1).to_bytes(4, "big") + (1).to_bytes(4, "big")  # PREVIEW_IMAGE, JPEG


class FakeGPU:
    """Mixed into FakeComfyUI: the worker task and the websocket events it sends."""

    step_delay: float
    previews: bool
    stalled: bool
    ws_sent: list[dict]
    previews_sent: list[bytes]
    history: dict[str, dict]
    files: dict[str, bytes]
    gpu_jobs: int
    _exec_errors: list[str]
    _queue: asyncio.Queue | None
    _pending: list[str]
    _running: str | None
    _sockets: dict[str, web.WebSocketResponse]
    _closing: asyncio.Event
    _interrupted: bool

    def _remaining(self) -> int:
        return len(self._pending) + (1 if self._running else 0)

    def _status(self) -> dict[str, Any]:
        return {"exec_info": {"queue_remaining": self._remaining()}}

    async def _send(self, sid: str | None, kind: str, data: dict[str, Any]) -> None:
        event = {"type": kind, "data": data}
        targets = (
            list(self._sockets.values())
            if sid is None
            else [self._sockets[sid]]
            if sid in self._sockets
            else []
        )
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
        messages: list[list[Any]] = [["execution_start", {"prompt_id": prompt_id}]]
        started = {"prompt_id": prompt_id, "timestamp": int(time.time() * 1000)}
        await self._send(sid, "execution_start", started)

        async def visit(node_id: str) -> None:
            await self._send(sid, "executing", {"node": node_id, "display_node": node_id,
                                                "prompt_id": prompt_id})  # fmt: skip

        async def sample(node_id: str, inputs: dict[str, Any], batch: int) -> None:
            steps = int(inputs.get("steps", 20))
            if self.stalled:
                await self._closing.wait()
            for step in range(1, steps + 1):
                await asyncio.sleep(batch_seconds(self.step_delay, batch))
                if self._interrupted:
                    self._interrupted = False
                    raise _Stopped(
                        "execution_interrupted",
                        {
                            "prompt_id": prompt_id,
                            "node_id": node_id,
                            "node_type": "KSampler",
                            "executed": [],
                        },
                    )
                await self._send(
                    sid,
                    "progress",
                    {"value": step, "max": steps, "prompt_id": prompt_id, "node": node_id},
                )
                if self.previews and sid in self._sockets:
                    frame = PREVIEW_FRAME + _jpeg(int(inputs["seed"]) + step)
                    self.previews_sent.append(frame)
                    await self._sockets[sid].send_bytes(frame)
            if self._exec_errors:
                raise _Stopped("execution_error", {
                    "prompt_id": prompt_id, "node_id": node_id, "node_type": "KSampler",
                    "executed": [], "exception_message": self._exec_errors.pop(0),
                    "exception_type": "torch.OutOfMemoryError", "traceback": [],
                    "current_inputs": {}, "current_outputs": {}})  # fmt: skip

        try:
            pictures = await execute(prompt, self.files, sample, visit)
        except _Stopped as stopped:
            messages.append([stopped.kind, stopped.data])
            await self._send(sid, stopped.kind, stopped.data)
            self._store(number, prompt_id, prompt, {}, "error", messages)
            return
        outputs: dict[str, Any] = {}
        for node_id, images in pictures.items():
            kind = "output" if prompt[node_id]["class_type"] == "SaveImage" else "temp"
            entries = []
            for index, image in enumerate(images):
                name = f"imagebot_{number:05}_{index}_.png"
                self.files[f"{kind}//{name}"] = png(image)
                entries.append({"filename": name, "subfolder": "", "type": kind})
            outputs[node_id] = {"images": entries}
            await self._send(sid, "executed", {"node": node_id, "display_node": node_id,
                                               "output": {"images": entries},
                                               "prompt_id": prompt_id})  # fmt: skip
        self.gpu_jobs += 1
        done = {"prompt_id": prompt_id, "timestamp": int(time.time() * 1000)}
        messages.append(["execution_success", done])
        await self._send(sid, "execution_success", done)  # sent before task_done, as ComfyUI does
        self._store(number, prompt_id, prompt, outputs, "success", messages)
        await self._send(sid, "executing", {"node": None, "prompt_id": prompt_id})

    def _store(self, number: int, prompt_id: str, prompt: dict, outputs: dict, status: str,
               messages: list) -> None:  # fmt: skip
        self.history[prompt_id] = {
            "prompt": [number, prompt_id, prompt, {}, list(outputs)],
            "outputs": outputs,
            "status": {"status_str": status, "completed": status == "success",
                       "messages": messages},
            "meta": {},
        }  # fmt: skip


class _Stopped(Exception):
    """A prompt ended early: execution_error or execution_interrupted, with its message data."""

    def __init__(self, kind: str, data: dict[str, Any]):
        super().__init__(kind)
        self.kind, self.data = kind, data


def _jpeg(seed: int) -> bytes:
    buffer = io.BytesIO()
    picture(64, 64, seed).save(buffer, format="JPEG", quality=70)
    return buffer.getvalue()
