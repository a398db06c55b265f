"""Daily posts: one auto-generated batch per schedule per UTC day, at its time (SPEC §6).

The scheduler only decides what is due and claims it; the post itself is a queued GenerateJob
with a scheduled reply address, so provider caps, fairness, resume-after-restart and the
answer are exactly those of /generate.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from imagebot.commands.chat.settings import defaults
from imagebot.commands.jobs import GenerateJob
from imagebot.commands.requester import Requester
from imagebot.storage.daily import DailyStore, next_slot
from imagebot.storage.index import utc_now

if TYPE_CHECKING:
    from imagebot.bot.runtime import Runtime
    from imagebot.commands.ports import BatchPost
    from imagebot.commands.services import Services

log = logging.getLogger("imagebot.daily")
GRACE = timedelta(hours=1)  # a post later than this (the bot was down) waits for tomorrow
POLL_SECONDS = 30.0


def next_role(roles: list[str], last_role: str | None) -> str | None:
    """The role after `last_role` in the rotation; never `last_role` when there are two or more."""
    if not roles:
        return None
    if last_role in roles:
        return roles[(roles.index(last_role) + 1) % len(roles)]
    return random.choice(roles)


def scheduled_reply(row: dict[str, Any]) -> dict[str, Any]:
    """The address a daily post answers to: the `/daily set` command's own reply address, plus
    `scheduled: True` (post a new message in that chat; the interaction or the message it came
    from may be long gone) and the chat and guild ids."""
    return {
        **(row.get("reply") or {}),
        "scheduled": True,
        "platform": row["platform"],
        "chat_id": row["chat_id"],
        "guild_id": row.get("guild_id"),
    }


class NoChatPort:
    """The port of a schedule whose platform has no adapter in this process: archive only."""

    def __init__(self, schedule_id: str) -> None:
        self.schedule_id = schedule_id

    async def acknowledge(self, *, private: bool = False) -> None:
        pass

    async def progress(self, text: str, preview: bytes | None = None) -> None:
        pass

    async def text(self, text: str, *, private: bool = False) -> None:
        log.warning("daily %s: %s (no chat adapter runs here)", self.schedule_id, text)

    async def images(self, post: BatchPost) -> None:
        log.info("daily %s: archived %s (no chat adapter runs here)", self.schedule_id,
                 post.batch_id)  # fmt: skip

    async def file(self, name: str, data: bytes, text: str, *, private: bool = False) -> None:
        pass

    async def delete_post(self) -> None:
        pass


class DailyScheduler:
    """Finds due schedules, claims each day's run in the index, and queues its post."""

    def __init__(
        self,
        services: Services,
        runtime: Runtime,
        clock: Callable[[], datetime] = utc_now,
        *,
        grace: timedelta = GRACE,
        poll_seconds: float = POLL_SECONDS,
    ):
        self.services = services
        self.runtime = runtime
        self.clock = clock
        self.grace = grace
        self.poll_seconds = poll_seconds
        self.store = DailyStore(services.index.db)
        self.queued: dict[str, str] = {}  # schedule id -> the job id of its latest post
        self._wake = asyncio.Event()
        self._stopping = False

    async def run_due(self, now: datetime | None = None) -> list[str]:
        """Queue the post of every schedule due at `now` (at most once a day); their ids."""
        now = now or self.clock()
        queued = []
        for row, slot in self.store.list_due(now):
            run_date = slot.date().isoformat()
            if now - slot >= self.grace:
                # Missed while the bot was down: skip today's post rather than post it late.
                if self.store.claim(row["id"], run_date, None):
                    log.info("daily %s: %s UTC was missed by over %s", row["id"], slot, self.grace)
                continue
            role = next_role(_role_ids(), row.get("last_role"))
            # Claimed before queueing: a second process never posts the day twice, and the
            # queued job itself is durable, so a crash after this still posts once.
            if self.store.claim(row["id"], run_date, role):
                await self._queue(row, role)
                queued.append(row["id"])
        return queued

    async def _queue(self, row: dict[str, Any], role: str | None) -> None:
        requester = Requester(
            platform=row["platform"],
            user_id=None,
            user_name="daily",
            chat_id=row["chat_id"],
            guild_id=row.get("guild_id"),
        )
        job = GenerateJob(
            count=int(row["count"]),
            size=row["size"],
            provider=row["provider"],
            prompt_source=self.services.config.prompt_source,
            role=role,
            schedule=row["id"],
            spoiler=defaults(self.services, requester).spoiler,
        )
        reply = scheduled_reply(row)
        port = self.runtime.port_for(row["platform"], reply) or NoChatPort(row["id"])
        ticket = await self.runtime.submit(job, requester, reply, port)
        self.queued[row["id"]] = ticket.job_id

    def seconds_to_next(self, now: datetime) -> float:
        """How long to sleep: until the next schedule's time, at most `poll_seconds`."""
        rows = self.store.all()
        if not rows:
            return self.poll_seconds
        soonest = min(next_slot(row["time_utc"], now) for row in rows)
        return max(0.0, min(self.poll_seconds, (soonest - now).total_seconds()))

    async def run_forever(self) -> None:
        """Queue due posts, then sleep until the next time (or `poll_seconds`), until stop()."""
        while not self._stopping:
            try:
                await self.run_due(self.clock())
            except Exception:
                log.exception("daily schedules could not be checked")
            delay = self.seconds_to_next(self.clock())
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=max(delay, 0.05))
            except TimeoutError:
                pass

    def wake(self) -> None:
        """Check again now (a schedule was set or changed)."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()


def _role_ids() -> list[str]:
    from imagebot.providers.roles import role_ids

    return role_ids()
