"""Watch a WebUI while one of our renders is open: live previews, and a hung server noticed.

A1111 answers txt2img/img2img only when the job is done, so the render call alone cannot tell a
slow job from a dead server. Its /sdapi/v1/progress answers while it renders (with the latest
`current_image` when live previews are on), so polling it tells us both.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from imagebot.providers.base import (
    PreviewCallback,
    ProgressCallback,
    ProviderError,
    Unavailable,
    notify,
)
from imagebot.providers.webui_http import PROVIDER_ID, decode_image, host_of, seconds


@dataclass(frozen=True)
class WatchTimes:
    """How often to poll, and how much silence or idleness means a hung server."""

    poll: float = 1.0
    answer: float = 20.0  # a progress call with no answer by then: say we are waiting
    hang: float = 60.0  # no answer at all for this long: the server is hung
    idle: float = 60.0  # the server answers but runs no job while our request is open


@dataclass
class PreviewMux:
    """Previews of the batches of one call, delivered as one stream with the mean fraction."""

    callback: PreviewCallback | None
    fractions: dict[int, float] = field(default_factory=dict)
    _last: bytes = b""

    async def deliver(self, batch: int, image: bytes | None, fraction: float) -> None:
        self.fractions[batch] = fraction
        if self.callback is None or not image:
            return
        digest = hashlib.sha256(image).digest()
        if digest == self._last:
            return  # the server repeats its latest preview between refreshes
        self._last = digest
        mean = sum(self.fractions.values()) / len(self.fractions)
        result = self.callback(image, min(max(mean, 0.0), 1.0))
        if inspect.isawaitable(result):
            await result


Poll = Callable[[float], Awaitable[Any]]  # one GET /progress with a time-out


async def watch(
    url: str,
    poll: Poll,
    times: WatchTimes,
    *,
    batch: int,
    previews: PreviewMux,
    progress: ProgressCallback | None,
    show_previews: Callable[[], bool],
) -> None:
    """Poll until cancelled; raise Unavailable when the server is hung (silent, or idle)."""
    host = host_of(url)
    last_answer = time.monotonic()
    busy_seen = time.monotonic()
    while True:
        await asyncio.sleep(times.poll)
        try:
            answer = await poll(min(times.answer, times.hang))
        except ProviderError:
            answer = None
        now = time.monotonic()
        if not isinstance(answer, dict):
            silent = now - last_answer
            if silent >= times.hang:
                raise Unavailable(
                    PROVIDER_ID, f"the WebUI at {host} stopped answering: no answer for "
                    f"{seconds(silent)}",
                )  # fmt: skip
            if silent >= times.answer:
                await notify(
                    progress, f"waiting for the WebUI at {host}: no answer for {seconds(silent)}"
                )
            continue
        last_answer = now
        state = answer.get("state") if isinstance(answer.get("state"), dict) else {}
        running = bool(state.get("job")) or bool(state.get("job_count"))
        if running:
            busy_seen = now
        elif now - busy_seen >= times.idle:
            raise Unavailable(
                PROVIDER_ID, f"the WebUI at {host} runs no job but has not answered our request "
                f"for {seconds(now - busy_seen)}",
            )  # fmt: skip
        fraction = answer.get("progress")
        fraction = float(fraction) if isinstance(fraction, int | float) else 0.0
        image = None
        if show_previews() and answer.get("current_image"):
            try:
                image = decode_image(answer["current_image"], host, "progress")
            except ProviderError:
                image = None
        if running:
            await previews.deliver(batch, image, fraction)
