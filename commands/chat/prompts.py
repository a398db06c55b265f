"""`/prompts [count] [theme]`: prompt specs attached as prompts.csv, queued like /generate."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from imagebot.commands.captions import prompts_preview, waiting_text
from imagebot.commands.jobs import PromptsJob
from imagebot.commands.prompts import PromptsRequest, make_prompts, parse_prompts
from imagebot.providers.base import ProviderError, UsageError
from imagebot.storage.csv_io import prompt_rows_csv

if TYPE_CHECKING:
    from imagebot.commands.chat import ChatCommands
    from imagebot.commands.invocation import Invocation
    from imagebot.commands.ports import ReplyPort, RunningJob

DEFAULT_PROMPTS = 10


async def request(
    chat: ChatCommands, invocation: Invocation, port: ReplyPort, args: dict[str, Any]
) -> None:
    """Validate, acknowledge, then queue: it may call an LLM, and durability costs nothing."""
    checked = parse_prompts(
        chat.services.config,
        count=args.get("count", DEFAULT_PROMPTS),
        theme=args.get("theme"),
        requester=invocation.requester,
    )
    job = PromptsJob(count=checked.count, prompt_source=checked.prompt_source, theme=checked.theme)
    # The acknowledgement is complete before the job exists: an instant worker (the offline
    # source) answers with a followup, never with a second interaction response.
    await port.acknowledge()
    ticket = await chat.queue.submit(job, invocation.requester, invocation.reply, port)
    if ticket.place > 0:
        await port.progress(waiting_text(ticket.place))


async def run(chat: ChatCommands, running: RunningJob) -> None:
    """Make the specs (once: a resume re-sends what was made) and attach them as CSV."""
    job = running.job
    assert isinstance(job, PromptsJob)
    rows = (running.result or {}).get("rows")
    if rows is None:
        checked = PromptsRequest(
            count=job.count,
            prompt_source=job.prompt_source,
            theme=job.theme,
            role=job.role,
            requester=running.requester,
        )
        try:
            specs = await make_prompts(chat.services, checked)
        except (ProviderError, UsageError) as exc:
            await running.port.text(f"Your prompts could not be written: {exc}")
            running.finish("failed", str(exc))
            return
        rows = [spec.csv_row() for spec in specs]
        running.record({"rows": rows})
    if not rows:
        await running.port.text(
            "Every prompt written hit the banned-words list; try again or another theme."
        )
        running.finish("failed", "all prompts banned")
        return
    data = prompt_rows_csv(rows).encode("utf-8")
    preview = prompts_preview([row["title"] for row in rows], job.count)
    await running.port.file("prompts.csv", data, preview)
    running.finish("done")
