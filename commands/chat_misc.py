"""The small chat commands: /prompts, /export, /providers, /queue and /cancel."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from imagebot.commands.captions import prompts_preview, waiting_text
from imagebot.commands.chat_args import export_days, prompts_args, single_number
from imagebot.commands.export import export_archive
from imagebot.commands.limits import check_allowed, check_moderator
from imagebot.commands.prompts import make_prompts, parse_prompts
from imagebot.providers.base import ProviderError, UsageError
from imagebot.storage.csv_io import prompt_rows_csv
from imagebot.storage.index import iso, utc_now

if TYPE_CHECKING:
    from imagebot.bot.runtime import Job, Runtime
    from imagebot.commands.invocation import Invocation
    from imagebot.commands.ports import ReplyPort
    from imagebot.commands.services import Services

DEFAULT_PROMPTS = 10


class PromptsFlow:
    """/prompts is queued like /generate: it may call an LLM, and durability costs nothing."""

    def __init__(self, services: Services, runtime: Runtime):
        self.services = services
        self.runtime = runtime

    async def request(self, invocation: Invocation, port: ReplyPort) -> None:
        check_allowed(self.services.settings, invocation)
        options = prompts_args(invocation.args)
        request = parse_prompts(
            self.services.settings,
            count=options.get("count", DEFAULT_PROMPTS),
            theme=options.get("theme"),
            requester=invocation.requester,
        )
        payload = {
            "count": request.count,
            "theme": request.theme,
            "prompt_source": request.prompt_source,
        }
        job = {"kind": "prompts", "provider": None, "image_count": 0, "payload": payload}
        place = await self.runtime.submit(invocation, job, port)
        await port.acknowledge()  # the worker starts only after this first await
        if place > 0:
            await port.progress(waiting_text(place))

    async def run(self, job: Job) -> None:
        """Make the specs (once: a resume re-sends what was made) and attach them as CSV."""
        asked = int(job.payload["count"])
        rows = (job.result or {}).get("rows")
        if rows is None:
            try:
                request = parse_prompts(
                    self.services.settings,
                    count=asked,
                    theme=job.payload.get("theme"),
                    prompt_source=job.payload.get("prompt_source"),
                    requester=job.requester,
                )
                specs = await make_prompts(self.services, request)
            except (ProviderError, UsageError) as exc:
                await job.port.text(f"Your prompts could not be written: {exc}")
                job.finish("failed", str(exc))
                return
            rows = [spec.csv_row() for spec in specs]
            job.record({"rows": rows})
        if not rows:
            await job.port.text(
                "Every prompt written hit the banned-words list; try again or another theme."
            )
            job.finish("failed", "all prompts banned")
            return
        data = prompt_rows_csv(rows).encode("utf-8")
        preview = prompts_preview([row["title"] for row in rows], asked)
        await job.port.file("prompts.csv", data, preview)
        job.finish("done")


async def export_chat(services: Services, invocation: Invocation, port: ReplyPort) -> None:
    """This chat's archive as CSV, for moderators; `days` limits it to the last N days."""
    check_moderator(invocation, "export")
    days = export_days(single_number(invocation.args, "days"))
    since = iso(utc_now() - timedelta(days=days)) if days else None
    requester = invocation.requester
    stream = io.StringIO()
    count = export_archive(
        services.settings,
        since=since,
        stream=stream,
        platform=requester.platform,
        chat_id=requester.chat_id,
    )
    span = f" from the last {days} days" if days else ""
    noun = "batch" if count == 1 else "batches"
    text = f"{count} {noun} of this chat{span}."
    await port.file("export.csv", stream.getvalue().encode("utf-8"), text, private=True)


async def providers_text(services: Services) -> str:
    """The configured providers, their models and sizes, and whether each answers."""
    from imagebot.commands.providers_report import providers_report

    text, _ = await providers_report(services.settings, await services.http())
    return text


def describe_job(row: dict[str, Any] | None) -> str:
    """`4 images of “a foggy harbour” with local`, or `10 prompt specs`."""
    if row is None:
        return "a request"
    payload = row.get("payload") or {}
    theme = f" of “{payload['theme']}”" if payload.get("theme") else ""
    if row.get("kind") == "prompts":
        return f"{payload.get('count')} prompt specs{theme}"
    spec = payload.get("spec") or {}
    if spec.get("title"):
        theme = f" of “{spec['title']}” again"
    count = row.get("image_count")
    noun = "image" if count == 1 else "images"
    return f"{count} {noun}{theme} with {row.get('provider')}"


async def queue_text(runtime: Runtime, invocation: Invocation) -> str:
    requester = invocation.requester
    places = runtime.position(requester.platform, requester.user_id)
    if not places:
        return "You have no request waiting or running."
    lines = ["Your requests:"]
    for job_id, place in places:
        where = "being made now" if place == 0 else f"number {place} in the queue"
        lines.append(f"• {describe_job(runtime.jobs.get(job_id))}: {where}")
    return "\n".join(lines)


async def cancel_text(runtime: Runtime, invocation: Invocation) -> str:
    requester = invocation.requester
    places = runtime.position(requester.platform, requester.user_id)
    described = [
        f"• {describe_job(runtime.jobs.get(job_id))}" + (" (was running)" if place == 0 else "")
        for job_id, place in places
    ]
    count = await runtime.cancel(requester.platform, requester.user_id)
    if count == 0:
        return "You have no request to cancel."
    noun = "request" if count == 1 else "requests"
    return "\n".join([f"Cancelled {count} {noun}:", *described])
