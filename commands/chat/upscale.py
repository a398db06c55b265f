"""The U<n> buttons: queue an upscale of image N, then post it as a file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagebot.commands.captions import request_failed_text
from imagebot.commands.jobs import UpscaleJob
from imagebot.commands.limits import check_allowed
from imagebot.commands.upscaling import image_name, upscale_image
from imagebot.providers.base import ProviderError, UsageError

if TYPE_CHECKING:
    from imagebot.commands.chat import ChatCommands
    from imagebot.commands.invocation import Invocation
    from imagebot.commands.ports import ReplyPort, RunningJob


async def request(
    chat: ChatCommands, invocation: Invocation, port: ReplyPort, row: dict[str, Any], image: int
) -> None:
    """Check the image exists, then admit the job like /generate (it counts 1 image)."""
    check_allowed(chat.services.config, invocation)
    await image_name(chat.services, row, image)
    job = UpscaleJob(batch_id=row["id"], image=image, provider=row.get("provider") or "local")
    await chat.generation.admit(invocation, port, job)


async def run(chat: ChatCommands, running: RunningJob) -> None:
    """Upscale (once, even across a restart) and post the file."""
    job = running.job
    assert isinstance(job, UpscaleJob)
    done = running.result or {}
    if "failed" in done:
        await running.port.text(done["failed"])
        running.finish("failed", done["failed"])
        return
    if "path" not in done:
        try:
            done = await upscale_image(chat.services, job.batch_id, job.image, job.provider)
        except (ProviderError, UsageError) as exc:
            text = request_failed_text(exc)
            running.record({"failed": text})
            await running.port.text(text)
            running.finish("failed", str(exc))
            return
        running.record(done)
    path = Path(done["path"])
    row = chat.services.index.get_batch(job.batch_id) or {}
    if path.is_file():
        data = path.read_bytes()
    else:  # an S3 batch this machine holds no copy of
        data = await chat.services.archive.read_file(row.get("folder") or "", done["file"])
    text = (
        f"Image {job.image} of “{row.get('title') or 'the batch'}”, upscaled to "
        f"{done['width']}x{done['height']} ({done['upscaler']})."
    )
    await running.port.file(path.name, data, text)
    running.finish("done", None)
