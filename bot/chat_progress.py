"""Progress edits at a calm rate, for every chat platform: chats refuse frequent edits."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger("imagebot.progress")
Sleep = Callable[[float], Awaitable[None]]


class TrailingEdits:
    """Shows the latest text at most once every `interval` seconds.

    A text that comes sooner is kept and shown when the interval is up (the latest one wins),
    so a queue place is not lost behind an earlier line; the same text is never shown twice.
    A failed edit is logged, never raised: progress is a courtesy, the answer must still come.
    """

    def __init__(
        self,
        show: Callable[[str], Awaitable[None]],
        interval: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._show = show
        self.interval = interval
        self._clock = clock
        self._sleep = sleep
        self.shown: str | None = None
        self._shown_at = float("-inf")
        self._pending: str | None = None
        self._task: asyncio.Task | None = None

    def mark_shown(self, text: str | None) -> None:
        """Something else just put `text` on screen (a defer, a first message): wait from now."""
        self.shown, self._shown_at = text, self._clock()

    async def offer(self, text: str) -> None:
        """Show `text` now if the interval allows, else when it is up."""
        if text == self.shown:  # already on screen; a kept older text is outdated
            self._pending = None
            return
        self._pending = text
        if self._task is not None and not self._task.done():
            return  # the scheduled edit will show the latest text
        wait = self._shown_at + self.interval - self._clock()
        if wait <= 0:
            await self._flush()
        else:
            self._task = asyncio.create_task(self._flush_later(wait))

    def cancel(self) -> None:
        """Drop a kept text: the answer is going out, a late progress line must not follow it."""
        self._pending = None
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def settled(self) -> None:
        """Wait until a kept text has been shown (for tests)."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def _flush_later(self, wait: float) -> None:
        await self._sleep(wait)
        await self._flush()

    async def _flush(self) -> None:
        text, self._pending = self._pending, None
        if text is None or text == self.shown:
            return
        self.mark_shown(text)
        try:
            await self._show(text)
        except Exception:
            log.debug("a progress edit failed", exc_info=True)
