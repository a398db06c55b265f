"""`/generate` and the buttons under a batch: admit a request, queue it, render, answer once."""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import TYPE_CHECKING, Any

from imagebot.commands.captions import (
    batch_post,
    failure_text,
    read_info,
    rendering_text,
    waiting_text,
)
from imagebot.commands.generate import generate, parse_generate
from imagebot.commands.limits import NotAllowed, check_allowed, check_quota
from imagebot.providers.base import PromptSpec, ProviderError, UsageError
from imagebot.storage.index import utc_now

if TYPE_CHECKING:
    from imagebot.bot.runtime import Job, Runtime
    from imagebot.commands.invocation import Invocation
    from imagebot.commands.ports import ReplyPort
    from imagebot.commands.services import Services

log = logging.getLogger("imagebot.commands")
DEFAULT_COUNT = 4
BUTTON_ACTIONS = ("reroll", "again", "delete")


def spec_from_batch(row: dict[str, Any]) -> PromptSpec:
    """The prompt spec of an archived batch, to render it again with new seeds."""
    info = read_info(row.get("folder"))
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


class GenerateFlow:
    """Everything between a /generate (or a button) and the posted batch."""

    def __init__(self, services: Services, runtime: Runtime):
        self.services = services
        self.runtime = runtime
        # Images of requests acknowledged but not yet persisted, per user: the quota counts
        # them, so two quick requests cannot both slip past it.
        self._admitting: dict[tuple[str, str | None], int] = {}

    # ------------------------------------------------------------ admission

    async def request(
        self,
        invocation: Invocation,
        port: ReplyPort,
        options: dict[str, Any],
        *,
        spec: PromptSpec | None = None,
    ) -> None:
        """Allow-lists, validation and quota; then acknowledge, persist and queue."""
        settings = self.services.settings
        check_allowed(settings, invocation)
        request = parse_generate(
            settings,
            count=options.get("count", DEFAULT_COUNT),
            size=options.get("size"),
            provider=options.get("provider"),
            theme=spec.theme if spec is not None else options.get("theme"),
            role=(spec.role if spec is not None else options.get("role")) or None,
            prompt_source=options.get("prompt_source"),
            requester=invocation.requester,
        )
        who = (invocation.requester.platform, invocation.requester.user_id)
        pending = self._admitting.get(who, 0)
        check_quota(settings, self.runtime.jobs, invocation, request.count, utc_now(), pending)
        payload = {
            "count": request.count,
            "size": str(request.size),
            "provider": request.provider,
            "prompt_source": request.prompt_source,
            "theme": request.theme,
            "role": request.role,
            "spec": dataclasses.asdict(spec) if spec is not None else None,
        }
        job = {
            "kind": "generate",
            "provider": request.provider,
            "image_count": request.count,
            "payload": payload,
        }
        # Acknowledge first: the chat sees "thinking…" at once even in a burst, and persisting
        # (a few hundred microseconds) follows right after it.
        self._admitting[who] = pending + request.count
        try:
            await port.acknowledge()
            place = await self.runtime.submit(invocation, job, port)
        finally:
            left = self._admitting.get(who, 0) - request.count
            if left > 0:
                self._admitting[who] = left
            else:
                self._admitting.pop(who, None)
        if place > 0:
            await port.progress(waiting_text(place))

    async def button(self, invocation: Invocation, port: ReplyPort) -> None:
        """`ib:<action>:<batch_id>`: re-roll, the same prompt again, or delete the post."""
        action, batch_id = parse_custom_id(str(invocation.args.get("custom_id") or ""))
        row = self.services.index.get_batch(batch_id)
        if row is None:
            raise UsageError("that batch is no longer in the archive")
        if action == "delete":
            await self._delete(invocation, port, row)
            return
        options = self._settings_of(row)
        spec = spec_from_batch(row) if action == "again" else None
        await self.request(invocation, port, options, spec=spec)

    def _settings_of(self, row: dict[str, Any]) -> dict[str, Any]:
        # What the user asked for (the job), not what a fallback rendered with (the batch).
        job = self.runtime.jobs.get(row["job_id"]) if row.get("job_id") else None
        asked = (job or {}).get("payload") or {}
        return {
            "count": asked.get("count") or row.get("image_count") or DEFAULT_COUNT,
            "size": row.get("size"),
            "provider": asked.get("provider") or row.get("provider"),
            "theme": row.get("theme"),
            "role": row.get("role") or None,
            "prompt_source": row.get("prompt_source"),
        }

    async def _delete(self, invocation: Invocation, port: ReplyPort, row: dict[str, Any]) -> None:
        requester = invocation.requester
        own = row.get("platform") == requester.platform and row.get("user_id") == str(
            requester.user_id
        )
        if not (own or invocation.is_moderator):
            raise NotAllowed(
                "only the person who asked for this batch or a moderator can delete it"
            )
        await port.delete_post()  # type: ignore[attr-defined]
        self.runtime.jobs.mark_batch_deleted(row["id"], requester.user_id)

    # ------------------------------------------------------------ the worker

    async def run(self, job: Job) -> None:
        """Render a queued request and answer it; a resumed job never renders twice."""
        summary = job.result if job.result and "batches" in job.result else None
        if summary is None:
            archived = self.runtime.jobs.archived_batches(job.id)
            if archived:  # killed after archiving, before the summary was recorded
                summary = self._summary_from_rows(job, archived)
        if summary is None and job.result and "failed" in job.result:
            await job.port.text(job.result["failed"])
            job.finish("failed", job.result["failed"])
            return
        if summary is None:
            summary = await self._render(job)
            if summary is None:
                return
            job.record(summary)
        await self._answer(job, summary)

    async def _render(self, job: Job) -> dict[str, Any] | None:
        payload = job.payload
        port = job.port
        spec = PromptSpec(**payload["spec"]) if payload.get("spec") else None

        async def progress(done: int, total: int) -> None:
            try:
                await port.progress(rendering_text(done, total))
            except Exception:  # a failed progress edit must not fail the render
                log.warning("progress update failed for job %s", job.id, exc_info=True)

        try:
            request = parse_generate(
                self.services.settings,
                count=payload["count"],
                size=payload["size"],
                provider=payload["provider"],
                theme=payload.get("theme"),
                role=payload.get("role"),
                prompt_source=payload.get("prompt_source"),
                requester=job.requester,
            )
            request = dataclasses.replace(request, spec=spec, job_id=job.id)
            if spec is None:
                await progress_text(port, "Writing a prompt …")
            results = await generate(
                self.services, request, progress, notes=lambda text: progress_text(port, text)
            )
        except (ProviderError, UsageError) as exc:
            text = f"Your request failed: {exc}"
            job.record({"failed": text})
            await port.text(text)
            job.finish("failed", str(exc))
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

    def _summary_from_rows(self, job: Job, rows: list[dict[str, Any]]) -> dict[str, Any]:
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
        summary = {"asked": job.payload.get("count") or job.image_count, "batches": batches}
        job.record(summary)
        return summary

    async def _answer(self, job: Job, summary: dict[str, Any]) -> None:
        port = job.port
        mention = job.requester.user_id if job.resumed else None
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
            post = batch_post(
                row,
                asked=summary["asked"],
                errors=batch["errors"],
                fallback_from=batch["fallback_from"],
                mention=mention,
            )
            await port.images(post)
            posted += 1
        # Marked in the same step as the reply is confirmed: a resume never answers again.
        job.finish("done" if posted else "failed", "; ".join(errors) or None)


async def progress_text(port: ReplyPort, text: str) -> None:
    try:
        await port.progress(text)
    except Exception:
        log.warning("progress update failed", exc_info=True)


def parse_custom_id(custom_id: str) -> tuple[str, str]:
    """`ib:<action>:<batch_id>` -> (action, batch_id); UsageError for anything else."""
    parts = custom_id.split(":")
    if len(parts) != 3 or parts[0] != "ib" or parts[1] not in BUTTON_ACTIONS or not parts[2]:
        raise UsageError(f"unknown button {custom_id!r}")
    return parts[1], parts[2]
