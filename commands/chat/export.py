"""`/export [days]`: this chat's archive as CSV, for moderators."""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from imagebot.commands.catalog import MAX_EXPORT_DAYS
from imagebot.commands.export import export_archive
from imagebot.providers.base import UsageError
from imagebot.storage.index import iso, utc_now

if TYPE_CHECKING:
    from imagebot.commands.chat import ChatCommands
    from imagebot.commands.invocation import Invocation
    from imagebot.commands.ports import ReplyPort


def parse_days(value: Any) -> int | None:
    """The last N days, or everything when no number is given."""
    if value is None:
        return None
    text = str(value).strip()
    if not text.lstrip("+").isdigit() or not 1 <= int(text) <= MAX_EXPORT_DAYS:
        raise UsageError(
            f"days must be a whole number from 1 to {MAX_EXPORT_DAYS}, got {text!r} "
            "(leave it out to export everything)"
        )
    return int(text)


async def run(
    chat: ChatCommands, invocation: Invocation, port: ReplyPort, args: dict[str, Any]
) -> None:
    """Stream the CSV in a worker thread, on the one index: the chat keeps answering."""
    days = parse_days(args.get("days"))
    since = iso(utc_now() - timedelta(days=days)) if days else None
    requester = invocation.requester
    stream = io.StringIO()
    count = await asyncio.to_thread(
        export_archive,
        chat.services.index,
        since=since,
        stream=stream,
        platform=requester.platform,
        chat_id=requester.chat_id,
    )
    span = f" from the last {days} days" if days else ""
    noun = "batch" if count == 1 else "batches"
    text = f"{count} {noun} of this chat{span}."
    await port.file("export.csv", stream.getvalue().encode("utf-8"), text, private=True)
