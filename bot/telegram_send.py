"""Sending to Telegram politely: flood-control retries, a per-group pacer, captions that fit."""

from __future__ import annotations

import asyncio
import html
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from commands.ports import BatchPost

log = logging.getLogger("imagebot.telegram")
T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]

CAPTION_MAX, TEXT_MAX, ALBUM_MAX = 1024, 4096, 10
PHOTO_MAX_BYTES, PHOTO_MAX_SIDES, PHOTO_MAX_RATIO = 10 << 20, 10000, 20
GROUP_PER_MINUTE = 20  # Telegram's documented cap on messages to one group
MAX_RETRIES = 5
MAX_RETRY_WAIT = 300.0  # a longer flood wait is Telegram telling us to give up for now


def utf16_len(text: str) -> int:
    """Telegram counts lengths in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def cut(text: str, limit: int) -> str:
    """`text` shortened with an ellipsis so that it is at most `limit` UTF-16 units."""
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


class Pacer:
    """Spaces out messages to one group so it stays under Telegram's 20 per minute."""

    def __init__(
        self,
        per_minute: int = GROUP_PER_MINUTE,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self.sleep = sleep
        self._sent: dict[int, deque[float]] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    async def wait(self, chat_id: int, count: int = 1) -> None:
        """Wait until `count` more messages fit this group's minute (private chats: never)."""
        if chat_id > 0:
            return
        lock = self._locks.setdefault(chat_id, asyncio.Lock())
        async with lock:
            sent = self._sent.setdefault(chat_id, deque())
            count = min(count, self.per_minute)
            while True:
                now = self.clock()
                while sent and sent[0] <= now - 60:
                    sent.popleft()
                if len(sent) + count <= self.per_minute:
                    break
                await self.sleep(sent[len(sent) + count - self.per_minute - 1] + 60 - now)
            sent.extend([self.clock()] * count)


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
        except (TelegramServerError, TelegramNetworkError):
            # Sending twice is worse than a short delay, so only a couple of quick retries.
            if attempt >= 1:
                raise
            log.warning("Telegram failed on %s; retrying once", what, exc_info=True)
            await sleep(1.0)
    raise AssertionError("unreachable")


def chunks(items: list[Any], size: int = ALBUM_MAX) -> list[list[Any]]:
    """`items` in consecutive groups of at most `size`."""
    return [items[i : i + size] for i in range(0, len(items), size)]
