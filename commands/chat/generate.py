"""`/generate` (and re-roll / same prompt): admit a request, queue it, render, answer once."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from imagebot.commands.captions import (
    batch_post,
    failure_text,
    read_info,
    rendering_text,
    request_failed_text,
    waiting_text,
)
from imagebot.commands.chat.settings import defaults
from imagebot.commands.generate import GenerateRequest, generate, parse_generate
from imagebot.commands.jobs import GenerateJob
from imagebot.commands.limits import check_allowed, check_queued, check_quota
from imagebot.providers.base import PromptSpec, ProviderError, Size, UsageError
from imagebot.providers.catalog import check_provider
from imagebot.storage.index import utc_now

if TYPE_CHECKING:
    from imagebot.commands.invocation import Invocation
    from imagebot.commands.jobs import Job
    from imagebot.commands.ports import JobQueue, ReplyPort, RunningJob
    from imagebot.commands.requester import Requester
    from imagebot.commands.services import Services

log = logging.getLogger("imagebot.commands")
DEFAULT_COUNT = 4


class GenerateCommand:
    """Everything between a /generate (or a button) and the posted batch."""

    def __init__(self, services: Services, queue: JobQueue):
        self.services = services
        self.queue = queue
        # Images of requests acknowledged but not yet queued, per user: the quota counts
        # them, so two quick requests cannot both slip past it.
        self._admitting: dict[tuple[str, str | None], int] = {}
        self._requests: dict[tuple[str, str | None], int] = {}  # requests being admitted

    # ------------------------------------------------------------ admission

    async def request(
        self,
        invocation: Invocation,
        port: ReplyPort,
        options: dict[str, Any],
        *,
        spec: PromptSpec | None = None,
    ) -> None:
        """Validate once, check the quota, acknowledge, then queue (in that order: the
        acknowledgement is on screen before any worker can answer)."""
        config = self.services.config
        chat = defaults(self.services, invocation.requester)  # where the user gave nothing
        role = spec.role if spec is not None else options.get("role")
        request = parse_generate(
            config,
            count=options.get("count", chat.count or DEFAULT_COUNT),
            size=options.get("size") or chat.size,
            provider=options.get("provider") or chat.provider,
            theme=spec.theme if spec is not None else options.get("theme"),
            role=role or chat.role or None,
            prompt_source=options.get("prompt_source"),
            requester=invocation.requester,
        )
        job = GenerateJob(
            count=request.count,
            size=str(request.size),
            provider=request.provider,
            prompt_source=request.prompt_source,
            theme=request.theme,
            role=request.role,
            spec=spec,
            spoiler=chat.spoiler,
        )
        await self.admit(invocation, port, job, quota=chat.quota)

    async def admit(
        self, invocation: Invocation, port: ReplyPort, job: Job, *, quota: int | None = None
    ) -> None:
        """Quota, acknowledgement and queueing of a job that renders images."""
        who = (invocation.requester.platform, invocation.requester.user_id)
        pending = self._admitting.get(who, 0)
        config = self.services.config
        used = job.image_count
        check_quota(config, self.queue, invocation, used, utc_now(), pending, quota=quota)
        check_queued(self.queue, invocation, self._requests.get(who, 0))
        self._admitting[who] = pending + job.image_count
        self._requests[who] = self._requests.get(who, 0) + 1
        try:
            await port.acknowledge()
            ticket = await self.queue.submit(job, invocation.requester, invocation.reply, port)
        finally:
            if self._requests[who] > 1:
                self._requests[who] -= 1
            else:
                self._requests.pop(who)
            left = self._admitting.get(who, 0) - job.image_count
            if left > 0:
                self._admitting[who] = left
            else:
                self._admitting.pop(who, None)
        if ticket.place > 0:
            await port.progress(waiting_text(ticket.place))

    async def again(self, invocation: Invocation, port: ReplyPort, row: dict[str, Any]) -> None:
        """The same prompt spec as an archived batch, with new seeds."""
        check_allowed(self.services.config, invocation)
        info = await self.services.archive.read_info(row.get("folder"))  # local or S3
        spec = spec_from_batch(row, info)
        await self.request(invocation, port, self.settings_of(row), spec=spec)

    async def reroll(self, invocation: Invocation, port: ReplyPort, row: dict[str, Any]) -> None:
        """A new prompt with the settings of an archived batch."""
        check_allowed(self.services.config, invocation)
        await self.request(invocation, port, self.settings_of(row))

    def settings_of(self, row: dict[str, Any]) -> dict[str, Any]:
        """What the user asked for (the job), not what a fallback rendered with (the batch)."""
        queued = self.queue.get(row["job_id"]) if row.get("job_id") else None
        asked = queued.job if queued is not None and isinstance(queued.job, GenerateJob) else None
        return {
            "count": asked.count if asked else row.get("image_count") or DEFAULT_COUNT,
            "size": row.get("size"),
            "provider": asked.provider if asked else row.get("provider"),
            "theme": row.get("theme"),
            "role": row.get("role") or None,
            "prompt_source": row.get("prompt_source"),
        }

    # ------------------------------------------------------------ the worker

    async def run(self, running: RunningJob) -> None:
        """Render a queued request and answer it; a resumed job never renders twice."""
        job = running.job
        assert isinstance(job, GenerateJob)
        result = running.result or {}
        summary = result if "batches" in result else None
        if summary is None:
            archived = self.services.index.batches_of_job(running.id)
            if archived:  # killed after archiving, before the summary was recorded
                summary = summary_from_rows(job.count, archived)
                running.record(summary)
        if summary is None and "failed" in result:
            await running.port.text(result["failed"])
            running.finish("failed", result["failed"])
            return
        if summary is None:
            summary = await self._render(running, job)
            if summary is None:
                return
            running.record(summary)
        await self.answer(running, summary)

    async def _render(self, running: RunningJob, job: GenerateJob) -> dict[str, Any] | None:
        port = running.port

        async def progress(done: int, total: int) -> None:
            await progress_text(port, rendering_text(done, total))

        try:
            # Validated at admission; a resumed job only checks its provider is still here.
            check_provider(job.provider, self.services.config.configured)
            request = request_of(job, running.requester, running.id)
            if job.spec is None:
                await progress_text(port, "Writing a prompt …")
            results = await generate(
                self.services, request, progress, notes=lambda text: progress_text(port, text)
            )
        except (ProviderError, UsageError) as exc:
            text = request_failed_text(exc, scheduled=job.schedule is not None)
            running.record({"failed": text})
            await port.text(text)
            running.finish("failed", str(exc))
            return None
        return {
            "asked": request.count,
            "batches": [
                {
                    "id": result.batch_id,
                    "title": result.spec.title,
                    "status": result.status,
                    "errors": result.errors,
                    "fallback_from": result.fallback_from,
                }
                for result in results
            ],
        }

    async def answer(self, running: RunningJob, summary: dict[str, Any]) -> None:
        """Post every batch of the summary (or say why none rendered), then finish the job."""
        port = running.port
        job = running.job
        scheduled = isinstance(job, GenerateJob) and job.schedule is not None
        mention = running.requester.user_id if running.resumed and not scheduled else None
        spoiler = bool(getattr(job, "spoiler", False))
        posted = 0
        errors: list[str] = []
        for batch in summary["batches"]:
            errors += batch["errors"]
            row = self.services.index.get_batch(batch["id"])
            if batch["status"] == "failed" or row is None or not row.get("folder"):
                await port.text(
                    failure_text(batch["title"], batch["errors"], batch["fallback_from"])
                )
                continue
            local = await self.services.archive.fetch_local(row["folder"])
            post = batch_post(
                {**row, "folder": str(local or row["folder"])},  # an S3 batch: its local copy
                asked=summary["asked"],
                errors=batch["errors"],
                fallback_from=batch["fallback_from"],
                mention=mention,
                spoiler=spoiler,
            )
            await port.images(post)
            posted += 1
        # Marked in the same step as the reply is confirmed: a resume never answers again.
        running.finish("done" if posted else "failed", "; ".join(errors) or None)


def request_of(job: GenerateJob, requester: Requester, job_id: str) -> GenerateRequest:
    """The generate request a queued job stands for (no second validation)."""
    return GenerateRequest(
        count=job.count,
        size=Size.parse(job.size),
        provider=job.provider,
        prompt_source=job.prompt_source,
        theme=job.theme,
        role=job.role,
        requester=requester,
        spec=job.spec,
        job_id=job_id,
    )


def spec_from_batch(row: dict[str, Any], info: dict[str, Any] | None = None) -> PromptSpec:
    """The prompt spec of an archived batch, to render it again with new seeds."""
    info = read_info(row.get("folder")) if info is None else info
    return PromptSpec(
        title=row.get("title") or "",
        description=row.get("description") or "",
        metatags=json.loads(row.get("metatags") or "[]"),
        prompt=row.get("prompt") or "",
        negative_prompt=row.get("negative_prompt") or "",
        role=row.get("role") or "",
        theme=row.get("theme"),
        prompt_source=row.get("prompt_source") or "templates",
        prompt_model=row.get("prompt_model"),
        picks=dict(info.get("picks") or {}),
        settings=dict(info.get("settings") or {}),
    )


def summary_from_rows(asked: int, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The answer of a job whose batches were archived before it could record them."""
    batches = []
    for row in rows:
        info = read_info(row.get("folder"))
        batches.append(
            {
                "id": row["id"],
                "title": row.get("title"),
                "status": row.get("status"),
                "errors": list(info.get("errors") or []),
                "fallback_from": list(info.get("fallback_from") or []),
            }
        )
    return {"asked": asked, "batches": batches}


async def progress_text(port: ReplyPort, text: str) -> None:
    """A progress line; a failed edit never fails the work."""
    try:
        await port.progress(text)
    except Exception:
        log.warning("progress update failed", exc_info=True)
