"""Follow one queued ComfyUI prompt: websocket events, live preview frames, a hung server noticed.

ComfyUI reports a prompt's life on /ws (status, execution_start, executing, progress, executed,
execution_success / execution_error) and, when started with --preview-method, sends binary
frames: a 4-byte big-endian event type (1 = PREVIEW_IMAGE), a 4-byte image format (1 JPEG,
2 PNG), then the picture. Silence on the socket is not proof of a hang (a model may be loading),
so after `answer` seconds without an event we ask GET /queue where our prompt is, say so in
the progress line, and give up only when the server stops answering for `hang` seconds.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from imagebot.providers.base import ProgressCallback, ProviderError, Unavailable, notify
from imagebot.providers.budget import ANSWER_TIMEOUT, HANG_TIMEOUT
from imagebot.providers.comfyui_client import PROVIDER_ID, ComfyClient, host_of, seconds
from imagebot.providers.comfyui_workflow import execution_error_message
from imagebot.providers.webui_watch import PreviewMux

PREVIEW_IMAGE = 1  # BinaryEventTypes.PREVIEW_IMAGE in ComfyUI's server.py
IMAGE_FORMATS = {1: "jpeg", 2: "png"}


@dataclass(frozen=True)
class WatchTimes:
    """How long silence may last before we ask, and before we give up on a server."""

    answer: float = ANSWER_TIMEOUT  # no event (or no answer) for this long: ask and say so
    hang: float = HANG_TIMEOUT  # no answer at all for this long: the server is hung
    poll: float = 1.0  # between GET /history calls when there is no websocket


def preview_image(frame: bytes) -> bytes | None:
    """The picture in a binary PREVIEW_IMAGE frame, or None for any other frame."""
    if len(frame) <= 8 or int.from_bytes(frame[:4], "big") != PREVIEW_IMAGE:
        return None
    if int.from_bytes(frame[4:8], "big") not in IMAGE_FORMATS:
        return None
    return frame[8:]


def seed_label(seeds: Sequence[int]) -> str:
    """ "seed 11" or "seeds 11-13", for progress lines."""
    return f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]}-{seeds[-1]}"


@dataclass
class PromptWatch:
    """One queued prompt being followed, and what has been seen of it."""

    client: ComfyClient
    url: str
    prompt_id: str
    label: str
    batch: int  # index of this prompt's batch within the call, for the preview mux
    times: WatchTimes
    progress: ProgressCallback | None = None
    mux: PreviewMux | None = None
    running: bool = False
    fraction: float = 0.0

    @property
    def host(self) -> str:
        return host_of(self.url)

    async def follow(self, ws: aiohttp.ClientWebSocketResponse) -> bool:
        """Read events until the prompt ends (True) or the socket drops (False: poll instead)."""
        last_event = last_answer = time.monotonic()
        while True:
            try:
                message = await ws.receive(timeout=self.times.answer)
            except TimeoutError:
                answered = await self._ask(time.monotonic() - last_event, last_answer)
                if answered is None:
                    continue
                last_answer = time.monotonic()
                if not answered:
                    return True  # no longer queued: finished (history says how) or lost
                continue
            last_event = last_answer = time.monotonic()
            if message.type == aiohttp.WSMsgType.BINARY:
                await self._preview(message.data)
            elif message.type == aiohttp.WSMsgType.TEXT:
                if await self._event(message.data):
                    return True
            elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                  aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.ERROR):  # fmt: skip
                return False

    async def _ask(self, quiet: float | None, last_answer: float) -> bool | None:
        """Where is our prompt? True: still queued or running; False: gone; None: no answer.

        `quiet`: seconds since the last event (None: no websocket); `last_answer`: when the
        server last said anything.
        """
        try:
            state, ahead = await self.client.queue_place(self.url, self.prompt_id)
        except Unavailable:
            silent = time.monotonic() - last_answer
            if silent >= self.times.hang:
                raise Unavailable(
                    PROVIDER_ID, f"ComfyUI at {self.host} stopped answering: no event and no "
                    f"answer for {seconds(silent)}",
                ) from None  # fmt: skip
            await notify(
                self.progress,
                f"waiting for ComfyUI at {self.host}: no answer for {seconds(silent)}",
            )
            return None
        if state == "pending":
            await notify(
                self.progress, f"waiting for ComfyUI at {self.host}: queued, {ahead} ahead of us"
            )
        elif state == "running":
            self.running = True
            quiet_for = "" if quiet is None else f", no progress for {seconds(quiet)}"
            await notify(
                self.progress,
                f"waiting for ComfyUI at {self.host}: running {self.label}{quiet_for}",
            )
        return state != "gone"

    async def _preview(self, frame: bytes) -> None:
        image = preview_image(frame)
        if image is not None and self.mux is not None:
            await self.mux.deliver(self.batch, image, self.fraction)

    async def _event(self, text: str) -> bool:
        """Handle one JSON event; True when our prompt has ended well."""
        try:
            event = json.loads(text)
            kind, data = event["type"], event.get("data") or {}
        except (ValueError, KeyError, TypeError, AttributeError):
            return False
        if not isinstance(data, dict) or data.get("prompt_id", self.prompt_id) != self.prompt_id:
            return False  # another prompt's events (a shared client id or a broadcast)
        if kind == "status" and not self.running:
            remaining = (data.get("status") or {}).get("exec_info", {}).get("queue_remaining")
            if remaining:
                await notify(self.progress, f"ComfyUI: queued ({remaining} in the server's queue)")
        elif kind == "execution_start" or (kind == "executing" and data.get("node")):
            self.running = True
        elif kind == "progress":
            value, most = data.get("value"), data.get("max")
            if isinstance(value, int | float) and isinstance(most, int | float) and most > 0:
                self.fraction = min(max(value / most, 0.0), 1.0)
                if self.mux is not None:
                    self.mux.fractions[self.batch] = self.fraction
            await notify(self.progress, f"ComfyUI: {self.label}, step {value}/{most}")
        elif kind == "execution_error":
            raise ProviderError(PROVIDER_ID, execution_error_message(data))
        elif kind == "execution_interrupted":
            raise Unavailable(PROVIDER_ID, "the render was interrupted on the server")
        elif kind == "executing" and data.get("node") is None:
            return True  # sent after the history entry is stored (execution_success is before)
        return False

    async def result(self, polling: bool) -> dict[str, Any]:
        """The finished history entry; `polling`: wait for it to appear (no websocket)."""
        silent_since = asked = time.monotonic()
        while True:
            if polling and time.monotonic() - asked >= self.times.answer:
                await self._ask(None, silent_since)  # say where our prompt is, now and then
                asked = time.monotonic()
            try:
                entry = await self.client.history(self.url, self.prompt_id)
                silent_since = time.monotonic()
            except Unavailable:
                silent = time.monotonic() - silent_since
                if silent >= self.times.hang:
                    raise Unavailable(
                        PROVIDER_ID, f"ComfyUI at {self.host} stopped answering: no answer for "
                        f"{seconds(silent)}",
                    ) from None  # fmt: skip
                entry = None
            if entry is not None:
                status = entry.get("status") or {}
                if status.get("status_str") == "error":
                    for name, details in status.get("messages") or []:
                        if name == "execution_error":
                            raise ProviderError(PROVIDER_ID, execution_error_message(details))
                        if name == "execution_interrupted":
                            raise Unavailable(
                                PROVIDER_ID, "the render was interrupted on the server"
                            )
                    raise ProviderError(PROVIDER_ID, "the workflow failed on the server")
                if status.get("completed", True):
                    return entry
            elif not polling and await self._lost():
                raise Unavailable(
                    PROVIDER_ID, f"ComfyUI at {self.host} lost our prompt (was it restarted?)"
                )
            await asyncio.sleep(self.times.poll)

    async def _lost(self) -> bool:
        """Neither queued nor in the history (looked at again: it may have just finished)."""
        try:
            state, _ = await self.client.queue_place(self.url, self.prompt_id)
            return state == "gone" and await self.client.history(self.url, self.prompt_id) is None
        except Unavailable:
            return False  # result() counts the silence
