"""`/daily set TIME [provider] [size] [count]`, `/daily off`, `/daily show` (SPEC §6)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from imagebot.commands.generate import DEFAULT_SIZE, parse_generate
from imagebot.providers.base import UsageError
from imagebot.storage.daily import DailyStore, latest_slot, next_slot
from imagebot.storage.index import iso, utc_now

if TYPE_CHECKING:
    from imagebot.bot.settings import Settings
    from imagebot.commands.invocation import Invocation
    from imagebot.commands.ports import ReplyPort
    from imagebot.commands.services import Services

DEFAULT_COUNT = 4
ACTIONS = ("set", "off", "show")
USAGE = "use /daily set HH:MM [provider] [size] [count], /daily off or /daily show"
NOT_MODERATOR = (
    "Only moderators can change or see this chat's daily post "
    "(Discord: Manage Server or Manage Messages; Telegram: chat administrators)."
)
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
_SIZE_LIKE = re.compile(r"^\d+\s*[xX×]\s*\d+$")


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


def _words(text: str) -> dict[str, Any]:
    """Telegram's words: `set 09:30 dalle 512x512 4`; the optional ones in any order."""
    words = text.split()
    if not words:
        raise UsageError(f"say what to do: {USAGE}")
    options: dict[str, Any] = {"action": words[0].lower()}
    if options["action"] != "set":
        if len(words) > 1:
            raise UsageError(f"/daily {words[0]} takes no arguments; {USAGE}")
        return options
    if len(words) < 2:
        raise UsageError(f"/daily set needs a time: {USAGE}")
    options["time"] = words[1]
    for word in words[2:]:
        key = "size" if _SIZE_LIKE.match(word) else "count" if word.isdigit() else "provider"
        if key in options:
            raise UsageError(f"{key} given twice ({options[key]!r} and {word!r}); {USAGE}")
        options[key] = word
    return options


def parse_daily(args: str | dict[str, Any], settings: Settings) -> DailyCommand:
    """Words (Telegram) or named options (Discord) into a checked DailyCommand."""
    if isinstance(args, str):
        options = _words(args)
    elif "action" not in args and "text" in args:
        options = _words(str(args.get("text") or ""))
    else:
        options = dict(args)
    action = str(options.get("action") or "").strip().lower()
    if action not in ACTIONS:
        raise UsageError(f"unknown /daily action {action!r}; {USAGE}")
    if action != "set":
        return DailyCommand(action)
    time_utc = parse_time(options.get("time"))
    count = options.get("count")
    request = parse_generate(
        settings,
        count=DEFAULT_COUNT if count in (None, "") else count,
        size=options.get("size") or DEFAULT_SIZE,
        provider=options.get("provider") or None,
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


async def handle_daily(
    services: Services, invocation: Invocation, port: ReplyPort, now: datetime | None = None
) -> None:
    """Run /daily for a moderator: set, off or show this chat's schedule; refuse anyone else."""
    if not invocation.is_moderator:
        await port.text(NOT_MODERATOR, private=True)
        return
    who = invocation.requester
    if not who.chat_id:
        await port.text("/daily works in a chat or channel, where the posts will go.", private=True)
        return
    try:
        command = parse_daily(invocation.args, services.settings)
    except UsageError as exc:
        message = str(exc)
        await port.text(message[:1].upper() + message[1:] + ". Nothing was changed.", private=True)
        return
    store = DailyStore(services.index.db)
    now = now or utc_now()
    if command.action == "show":
        row = store.get(who.platform, who.chat_id)
        if row is None:
            await port.text("No daily post is set for this chat; " + USAGE + ".", private=True)
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
