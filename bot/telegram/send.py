"""Sending to Telegram politely: flood-control retries, a pacer for its limits, fitting captions."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import html
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from pathlib import Path
from typing import Any, TypeVar

from imagebot.bot.telegram.fair_turns import RoundRobinTurns
from imagebot.commands.ports import BatchPost

log = logging.getLogger("imagebot.telegram")
T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]

CAPTION_MAX, TEXT_MAX, ALBUM_MAX = 1024, 4096, 10
PHOTO_MAX_BYTES, PHOTO_MAX_SIDES, PHOTO_MAX_RATIO = 10 << 20, 10000, 20
GROUP_PER_MINUTE = 20  # Telegram's documented cap on messages to one group
OVERALL_PER_SECOND = 30  # and on messages overall (bulk notifications)
MAX_RETRIES = 5
MAX_RETRY_WAIT = 300.0  # a longer flood wait is Telegram telling us to give up for now


def utf16_len(text: str) -> int:
    """Telegram counts lengths in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


# "@name" in text we post (a theme, an LLM's title) would notify that user: a word joiner after
# the "@" keeps the text as written but stops Telegram from making it a mention.
MENTION_START = re.compile(r"@(?=\w)")
WORD_JOINER = "\u2060"


def cut(text: str, limit: int) -> str:
    """`text` as the bot posts it: no @mentions, shortened with an ellipsis to at most `limit`
    UTF-16 units. Every text and caption the bot sends goes through here."""
    text = MENTION_START.sub("@" + WORD_JOINER, text)
    if utf16_len(text) <= limit:
        return text
    if limit <= 0:
        return ""
    kept, used = [], 0
    for char in text:
        used += utf16_len(char)
        if used > limit - 1:  # room for the ellipsis
            break
        kept.append(char)
    return "".join(kept).rstrip() + "…"


def hashtag(tag: str) -> str | None:
    """`foggy harbour` -> `#foggy_harbour`: letters, digits and underscores only."""
    word = re.sub(r"[^\w]+", "_", tag.strip(), flags=re.UNICODE).strip("_")
    if not word or word.isdigit():
        return None  # Telegram does not link a hashtag of digits only
    return f"#{word}"


def caption_html(post: BatchPost) -> str:
    """Title in bold, the description cut to fit, hashtags, provider/model: at most 1024 shown."""
    tags = []
    for tag in post.tags:
        word = hashtag(tag)
        if word and word not in tags:
            tags.append(word)
    source = f"{post.provider}/{post.model}" if post.model else post.provider
    title = cut(post.title, 200)
    tail = [" ".join(tags), source]
    tail = [line for line in tail if line]
    tail_text = "\n\n".join(tail)
    # What a user sees is the unescaped text; keep the tags whole and cut the description.
    room = CAPTION_MAX - utf16_len(title) - 2 - utf16_len(tail_text) - (2 if tail_text else 0)
    if room < 40 and tail:  # too many tags: trim them before the description vanishes
        tail_text = cut(tail_text, max(0, CAPTION_MAX - utf16_len(title) - 2 - 42))
        room = CAPTION_MAX - utf16_len(title) - 2 - utf16_len(tail_text) - 2
    description = cut(post.description.strip(), max(0, room)) if room > 0 else ""
    parts = [f"<b>{html.escape(title)}</b>"]
    if description:
        parts.append(html.escape(description))
    if tail_text:
        parts.append(html.escape(tail_text))
    return "\n\n".join(parts)


def photo_fits(path: Path) -> bool:
    """Whether Telegram accepts the file as a photo (else it goes as a document)."""
    from PIL import Image, UnidentifiedImageError  # heavy: only when a batch is posted

    try:
        if path.stat().st_size > PHOTO_MAX_BYTES:
            return False
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, UnidentifiedImageError):
        return False
    return width + height <= PHOTO_MAX_SIDES and max(width, height) <= PHOTO_MAX_RATIO * max(
        1, min(width, height)
    )


class _Window:
    """Send times within a sliding window of `seconds`: how long until `count` more fit."""

    def __init__(self, limit: int, seconds: float, clock: Callable[[], float]) -> None:
        self.limit, self.seconds, self.clock = limit, seconds, clock
        self.times: list[float] = []  # sorted

    def delay(self, count: int) -> float:
        now = self.clock()
        del self.times[: bisect.bisect_right(self.times, now - self.seconds)]
        over = len(self.times) + min(count, self.limit) - self.limit
        return 0.0 if over <= 0 else self.times[over - 1] + self.seconds - now

    def take(self, count: int) -> float:
        stamp = self.clock()
        for _ in range(min(count, self.limit)):
            bisect.insort(self.times, stamp)
        return stamp

    def settle(self, stamp: float, count: int) -> None:
        """The send taken at `stamp` has ended: it counts from now (Telegram saw it no later)."""
        now = self.clock()
        for _ in range(min(count, self.limit)):
            at = bisect.bisect_left(self.times, stamp)
            if at < len(self.times) and self.times[at] == stamp:
                del self.times[at]
            bisect.insort(self.times, now)


class Pacer:
    """Spaces out messages: at most 30 a second overall and 20 a minute to one group, the
    group's minute shared round-robin between the requesters whose sends wait for it."""

    def __init__(
        self,
        per_minute: int = GROUP_PER_MINUTE,
        *,
        per_second: int = OVERALL_PER_SECOND,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self.sleep = sleep
        self._groups: dict[int, _Window] = {}
        self._turns: dict[int, RoundRobinTurns] = {}
        self._overall = _Window(per_second, 1.0, clock)
        self._overall_lock = asyncio.Lock()

    async def _room(self, window: _Window, count: int) -> float:
        while (wait := window.delay(count)) > 0:
            await self.sleep(wait)
        return window.take(count)

    def waiting(self, chat_id: int) -> dict[Hashable, int]:
        """Sends waiting for the group's budget, per requester (the one about to go excluded)."""
        turns = self._turns.get(chat_id)
        return turns.waiting() if turns else {}

    async def _group_room(
        self, chat_id: int, count: int, who: Hashable
    ) -> tuple[_Window, float] | None:
        if chat_id > 0:
            return None
        window = self._groups.setdefault(chat_id, _Window(self.per_minute, 60.0, self.clock))
        async with self._turns.setdefault(chat_id, RoundRobinTurns()).turn(who):
            return window, await self._room(window, count)

    @contextlib.asynccontextmanager
    async def sending(
        self, chat_id: int, count: int = 1, who: Hashable = None
    ) -> AsyncIterator[None]:
        """Hold room for `count` messages (the group's minute, the overall second) during a send.

        `who` is the requester the send answers (None: the bot's own posts): while sends wait
        for a group's minute, requesters take turns, so one member's flood delays another
        member's post by at most one send of theirs. The room counts from when the send ended,
        so a slow upload or a network delay cannot make Telegram see more than the limit in
        its own window.
        """
        group = await self._group_room(chat_id, count, who)
        async with self._overall_lock:  # FIFO: a burst is sent in arrival order
            overall = await self._room(self._overall, count)
        try:
            yield
        finally:
            self._overall.settle(overall, count)
            if group is not None:
                group[0].settle(group[1], count)


async def with_flood_control(
    call: Callable[[], Awaitable[T]], *, sleep: Sleep = asyncio.sleep, what: str = "call"
) -> T:
    """Run a Bot API call; on 429 wait retry_after and try again, a bounded number of times."""
    from aiogram.exceptions import TelegramNetworkError, TelegramRetryAfter, TelegramServerError

    for attempt in range(MAX_RETRIES):
        try:
            return await call()
        except TelegramRetryAfter as exc:
            if attempt == MAX_RETRIES - 1 or exc.retry_after > MAX_RETRY_WAIT:
                raise
            log.warning("flood control on %s: waiting %s s", what, exc.retry_after)
            await sleep(exc.retry_after)
        except (TelegramServerError, TelegramNetworkError) as exc:
            # Sending twice is worse than a short delay, so only a couple of quick retries.
            if attempt >= 1:
                raise
            log.warning("Telegram failed on %s (%s); retrying once", what, exc)
            await sleep(1.0)
    raise AssertionError("unreachable")


def chunks(items: list[Any], size: int = ALBUM_MAX) -> list[list[Any]]:
    """`items` in consecutive groups of at most `size`."""
    return [items[i : i + size] for i in range(0, len(items), size)]
