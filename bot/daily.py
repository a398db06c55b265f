"""Daily posts: one auto-generated batch per schedule per UTC day, at its time (SPEC §6)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from imagebot.commands.generate import BatchResult, generate, parse_generate
from imagebot.commands.requester import Requester
from imagebot.storage.daily import DailyStore, next_slot
from imagebot.storage.index import utc_now

if TYPE_CHECKING:
    from imagebot.commands.ports import ReplyPort
    from imagebot.commands.services import Services

log = logging.getLogger("imagebot.daily")
Post = Callable[[dict[str, Any], "BatchResult | Exception"], Awaitable[None]]
PortFactory = Callable[[dict], "ReplyPort"]
GRACE = timedelta(hours=1)  # a post later than this (the bot was down) waits for tomorrow
POLL_SECONDS = 30.0


def next_role(roles: list[str], last_role: str | None) -> str | None:
    """The role after `last_role` in the rotation; never `last_role` when there are two or more."""
    if not roles:
        return None
    if last_role in roles:
        return roles[(roles.index(last_role) + 1) % len(roles)]
    return random.choice(roles)


class DailyScheduler:
    """Finds due schedules, claims each day's run in the index, renders, and hands it to `post`."""

    def __init__(
        self,
        services: Services,
        post: Post,
        clock: Callable[[], datetime] = utc_now,
        *,
        grace: timedelta = GRACE,
        poll_seconds: float = POLL_SECONDS,
    ):
        self.services = services
        self.post = post
        self.clock = clock
        self.grace = grace
        self.poll_seconds = poll_seconds
        self.store = DailyStore(services.index.db)
        self._wake = asyncio.Event()
        self._stopping = False

    async def run_due(self, now: datetime | None = None) -> list[str]:
        """Post every schedule due at `now` (at most once a day); return the ids posted."""
        now = now or self.clock()
        claimed: list[tuple[dict[str, Any], str | None]] = []
        for row, slot in self.store.list_due(now):
            run_date = slot.date().isoformat()
            if now - slot >= self.grace:
                # Missed while the bot was down: skip today's post rather than post it late.
                if self.store.claim(row["id"], run_date, None):
                    log.info("daily %s: %s UTC was missed by over %s", row["id"], slot, self.grace)
                continue
            role = next_role(_role_ids(), row.get("last_role"))
            # Claimed before rendering: a crash or a second process never posts the day twice.
            if self.store.claim(row["id"], run_date, role):
                claimed.append((row, role))
        await asyncio.gather(*(self._run_one(row, role) for row, role in claimed))
        return [row["id"] for row, _ in claimed]

    async def _run_one(self, row: dict[str, Any], role: str | None) -> None:
        outcome: BatchResult | Exception
        try:
            request = parse_generate(
                self.services.settings,
                count=row["count"],
                size=row["size"],
                provider=row["provider"],
                role=role,
                requester=Requester(
                    platform=row["platform"],
                    user_id=None,
                    user_name="daily",
                    chat_id=row["chat_id"],
                    guild_id=row.get("guild_id"),
                ),
            )
            [outcome] = await generate(self.services, request)
        except Exception as exc:  # told to the chat; the next day still runs
            log.warning("daily %s failed: %s", row["id"], exc)
            outcome = exc
        try:
            await self.post(row, outcome)
        except Exception:
            log.exception("daily %s: posting failed", row["id"])

    def seconds_to_next(self, now: datetime) -> float:
        """How long to sleep: until the next schedule's time, at most `poll_seconds`."""
        rows = self.store.all()
        if not rows:
            return self.poll_seconds
        soonest = min(next_slot(row["time_utc"], now) for row in rows)
        return max(0.0, min(self.poll_seconds, (soonest - now).total_seconds()))

    async def run_forever(self) -> None:
        """Post due schedules, then sleep until the next time (or `poll_seconds`), until stop()."""
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


# ------------------------------------------------------------------ ways to post


def scheduled_reply(row: dict[str, Any]) -> dict[str, Any]:
    """The address a port factory gets for a daily post: the `/daily set` command's own reply
    address, plus `scheduled: True` (post a new message in that chat; the interaction or the
    message it came from may be long gone) and the chat and guild ids."""
    return {
        **(row.get("reply") or {}),
        "scheduled": True,
        "platform": row["platform"],
        "chat_id": row["chat_id"],
        "guild_id": row.get("guild_id"),
    }


def port_poster(services: Services, factories: Mapping[str, PortFactory]) -> Post:
    """A `post` that sends each batch to its chat through the platform's port factory."""
    from imagebot.commands.captions import batch_post, failure_text

    async def post(row: dict[str, Any], outcome: BatchResult | Exception) -> None:
        factory = factories.get(row["platform"])
        if factory is None:
            log.warning(
                "daily %s: no %s adapter running; archived only", row["id"], row["platform"]
            )
            return
        port = factory(scheduled_reply(row))
        if isinstance(outcome, Exception):
            await port.text(f"Today's daily post could not be made: {outcome}")
            return
        batch = services.index.get_batch(outcome.batch_id) if outcome.folder else None
        if batch is None:
            await port.text(failure_text(outcome.spec.title, outcome.errors, outcome.fallback_from))
            return
        await port.images(
            batch_post(
                batch,
                asked=row["count"],
                errors=outcome.errors,
                fallback_from=outcome.fallback_from,
            )
        )

    return post


def printing_poster(out: Any, err: Any) -> Post:
    """A `post` for `imagebot daily` without chat adapters: report each archived folder."""

    async def post(row: dict[str, Any], outcome: BatchResult | Exception) -> None:
        if isinstance(outcome, Exception):
            print(f"imagebot: daily {row['id']}: {outcome}", file=err)
            return
        if outcome.folder is not None:
            print(outcome.folder, file=out)
        for error in outcome.errors:
            print(f"imagebot: daily {row['id']}: {error}", file=err)

    return post
