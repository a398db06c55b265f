"""A rendered batch into the archive: its folder (written off the loop), info.json, and the
index row, which always ends up agreeing with the folder."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagebot.providers.base import ProviderError
from imagebot.storage.archive import ArchivedImage
from imagebot.storage.index import iso, tags_json
from imagebot.storage.object_store import ArchiveUploadError

if TYPE_CHECKING:
    from imagebot.commands.generate import GenerateRequest
    from imagebot.commands.render import RenderOutcome
    from imagebot.commands.services import Services
    from imagebot.providers.base import PromptSpec

log = logging.getLogger("imagebot.commands")


@dataclass
class BatchResult:
    """What one batch became: the archived folder and images, and what went wrong."""

    batch_id: str
    spec: PromptSpec
    provider: str
    model: str
    folder: Path | str | None  # a local folder, or an s3:// URL
    images: list[ArchivedImage]
    image_paths: list[Path]
    errors: list[str] = field(default_factory=list)
    fallback_from: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if not self.images:
            return "failed"
        return "partial" if self.errors else "complete"


def index_row(
    batch_id: str, spec: PromptSpec, request: GenerateRequest, created: Any, owner: str | None
) -> dict[str, Any]:
    """The batch's row, written before rendering: a crash leaves it marked, never unknown."""
    return {
        "id": batch_id,
        "title": spec.title,
        "description": spec.description,
        "metatags": tags_json(spec.metatags),
        "prompt": spec.prompt,
        "negative_prompt": spec.negative_prompt,
        "prompt_source": spec.prompt_source,
        "prompt_model": spec.prompt_model,
        "provider": request.provider,
        "size": str(request.size),
        "role": spec.role,
        "theme": spec.theme,
        "created_at": iso(created),
        "job_id": request.job_id,
        "owner": owner,
        **request.requester.row(),
    }


async def archive_batch(
    services: Services,
    request: GenerateRequest,
    spec: PromptSpec,
    batch_id: str,
    created: Any,
    provider: Any,
    outcome: RenderOutcome,
    fallback_from: list[str],
) -> BatchResult:
    """Write the batch folder (in a thread: fsyncs must not stall the chat) and index it."""
    provider_id = provider.provider_id if provider is not None else request.provider
    model = provider.model if provider is not None else ""
    errors = [str(error) for error in outcome.errors]
    index = services.index
    result = BatchResult(batch_id, spec, provider_id, model, None, [], [], errors, fallback_from)
    if not outcome.images:
        index.finish_batch(batch_id, status="failed", error="; ".join(errors))
        return result

    def write_folder() -> tuple[Path, dict[str, Any]]:
        staging = archive.stage(batch_id)
        try:
            for number, image in enumerate(outcome.images, 1):
                result.images.append(
                    archive.write_image(
                        staging,
                        number,
                        image.data,
                        extension=image.extension,
                        width=image.width,
                        height=image.height,
                        seed=image.seed,
                        revised_prompt=image.revised_prompt,
                    )
                )
            info = batch_info(
                batch_id, spec, request, provider, outcome, result.images, created, fallback_from
            )
            return staging, info
        except BaseException:
            archive.discard(staging)
            raise

    archive = services.archive
    try:
        staging, info = await asyncio.to_thread(write_folder)
        try:  # a local rename, or every file uploaded to the object store: whole or not at all
            folder = await archive.publish_batch(staging, info, created)
        except ArchiveUploadError as exc:
            archive.discard(staging)
            raise ProviderError("archive", exc.message) from exc
        except BaseException:
            archive.discard(staging)
            raise
    except BaseException as exc:
        # The index is written only from the loop's thread; its connection is shared.
        what = getattr(exc, "message", None) or "writing the archive failed"
        index.finish_batch(batch_id, status="failed", error=what)
        raise
    result.folder = folder
    local = archive.local_folder(folder)
    result.image_paths = [local / image.file for image in result.images] if local else []
    try:  # waits out another writer (storage.transactions) before giving up
        index.finish_batch(
            batch_id,
            status=result.status,
            error="; ".join(errors) or None,
            folder=str(folder),
            image_count=len(result.images),
            provider=provider_id,
            model=model,
            rendered_size=str(outcome.rendered_size),
        )
    except sqlite3.OperationalError as exc:
        # The folder is whole and stays: the next start finds it by its id and records it.
        log.warning("batch %s is archived in %s, but the index could not record it yet (%s); "
                    "it is recorded at the next start", batch_id, folder, exc)  # fmt: skip
    return result


def batch_info(
    batch_id: str,
    spec: PromptSpec,
    request: GenerateRequest,
    provider: Any,
    outcome: RenderOutcome,
    images: list[ArchivedImage],
    created: Any,
    fallback_from: list[str],
) -> dict[str, Any]:
    """info.json (SPEC §4): both layers of the recipe, and every image."""
    info: dict[str, Any] = {
        "id": batch_id,
        "title": spec.title,
        "description": spec.description,
        "metatags": list(spec.metatags),
        "prompt": spec.prompt,
        "negative_prompt": spec.negative_prompt,
        "prompt_source": spec.prompt_source,
        "prompt_model": spec.prompt_model,
        "provider": provider.provider_id,
        "model": provider.model,
        "size": str(request.size),
        "rendered_size": str(outcome.rendered_size),
        "seed": images[0].seed if images else None,
        "role": spec.role,
        "theme": spec.theme,
        "created_at": iso(created),
        "requested_by": request.requester.info(),
        "settings": dict(spec.settings),
        "picks": dict(spec.picks),
        "status": "partial" if outcome.errors else "complete",
        "images": [image.info() for image in images],
    }
    if getattr(provider, "offline", False):
        info["offline_render"] = True
        info["note"] = "rendered offline by imagebot's procedural renderer, not by an AI model"
    if outcome.softened_prompt:
        info["softened_prompt"] = outcome.softened_prompt
    if fallback_from:
        info["fallback_from"] = fallback_from
    if outcome.errors:
        info["errors"] = [str(error) for error in outcome.errors]
    return info
