"""`/daily set TIME [provider] [size] [count]`, `/daily off`, `/daily show` (SPEC §6)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from imagebot.commands.arguments import usage
from imagebot.commands.catalog import BY_NAME
from imagebot.commands.generate import DEFAULT_SIZE, parse_generate
from imagebot.providers.base import UsageError
from imagebot.storage.daily import DailyStore, latest_slot, next_slot
from imagebot.storage.index import iso, utc_now

if TYPE_CHECKING:
    from imagebot.commands.chat import ChatCommands
    from imagebot.commands.config import CommandConfig
    from imagebot.commands.invocation import Invocation
    from imagebot.commands.ports import ReplyPort
    from imagebot.commands.services import Services

DEFAULT_COUNT = 4
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")


@dataclass(frozen=True)
class DailyCommand:
    """A checked /daily command; `set` carries the normalised schedule settings."""

    action: str
    time_utc: str | None = None
    provider: str | None = None
    size: str | None = None
    count: int | None = None


def parse_time(text: Any) -> str:
    """`HH:MM` from 00:00 to 23:59 (UTC), normalised to two digits each; UsageError otherwise."""
    value = str(text or "").strip()
    match = _TIME.match(value)
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise UsageError(
            f"time {value!r} is not a time of day: use HH:MM in UTC from 00:00 to 23:59, e.g. 09:30"
        )
    return f"{int(match.group(1)):02d}:{match.group(2)}"


def parse_daily(args: dict[str, Any], config: CommandConfig) -> DailyCommand:
    """Named arguments (commands.arguments.named) into a checked DailyCommand."""
    action = args["action"]
    if action != "set":
        return DailyCommand(action)
    time_utc = parse_time(args.get("time"))
    count = args.get("count")
    request = parse_generate(
        config,
        count=DEFAULT_COUNT if count in (None, "") else count,
        size=args.get("size") or DEFAULT_SIZE,
        provider=args.get("provider") or None,
    )
    return DailyCommand(action, time_utc, request.provider, str(request.size), request.count)


def describe(row: dict[str, Any]) -> str:
    """One line saying what a schedule posts and when."""
    return (
        f"every day at {row['time_utc']} UTC: {row['count']} "
        f"{'image' if row['count'] == 1 else 'images'} of {row['size']} with {row['provider']}"
    )


def _next_post_text(row: dict[str, Any], now: datetime) -> str:
    upcoming = next_slot(row["time_utc"], now)
    if (row.get("last_run_date") or "") < latest_slot(row["time_utc"], now).date().isoformat():
        upcoming = latest_slot(row["time_utc"], now)  # due now: the scheduler is about to post
    day = "today" if upcoming.date() == now.date() else "tomorrow"
    return f"next post {day} at {row['time_utc']} UTC"


async def run(
    chat: ChatCommands, invocation: Invocation, port: ReplyPort, args: dict[str, Any]
) -> None:
    await handle_daily(chat.services, invocation, port, args, chat.clock())


async def handle_daily(
    services: Services,
    invocation: Invocation,
    port: ReplyPort,
    args: dict[str, Any],
    now: datetime | None = None,
) -> None:
    """Set, turn off or show this chat's schedule (the dispatcher checked it is a moderator)."""
    who = invocation.requester
    if not who.chat_id:
        await port.text("/daily works in a chat or channel, where the posts will go.", private=True)
        return
    command = parse_daily(args, services.config)
    store = DailyStore(services.index.db)
    now = now or utc_now()
    if command.action == "show":
        row = store.get(who.platform, who.chat_id)
        if row is None:
            usage_text = usage(BY_NAME["daily"])
            await port.text(f"No daily post is set for this chat; use {usage_text}.", private=True)
        else:
            await port.text(
                f"Daily post: {describe(row)}; {_next_post_text(row, now)}.", private=True
            )
        return
    if command.action == "off":
        if store.delete(who.platform, who.chat_id):
            await port.text("Daily post turned off for this chat.")
        else:
            await port.text("There was no daily post set for this chat.", private=True)
        return
    row = store.upsert(
        {
            "platform": who.platform,
            "chat_id": who.chat_id,
            "guild_id": who.guild_id,
            "time_utc": command.time_utc,
            "provider": command.provider,
            "size": command.size,
            "count": command.count,
            "created_by": who.user_id,
            "created_at": iso(now),
            # The first post is at the next TIME: a time already past today starts tomorrow.
            "last_run_date": _first_run_mark(store, who.platform, who.chat_id, command, now),
            "reply": invocation.reply,
        }
    )
    await port.text(f"Daily post set: {describe(row)}; {_next_post_text(row, now)}.")


def _first_run_mark(
    store: DailyStore, platform: str, chat_id: str, command: DailyCommand, now: datetime
) -> str | None:
    """last_run_date for a new or changed schedule: today's slot counts as done if passed."""
    slot = latest_slot(command.time_utc or "00:00", now).date().isoformat()
    previous = store.get(platform, chat_id)
    last = (previous or {}).get("last_run_date") or ""
    # Marking the latest passed slot as done never loses a day: the next slot is still ahead.
    return max(last, slot)
