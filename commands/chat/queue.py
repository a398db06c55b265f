"""`/queue` and `/cancel`: the user's requests, their places, and cancelling them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from imagebot.commands.jobs import GenerateJob, PromptsJob, UpscaleJob, VaryJob

if TYPE_CHECKING:
    from imagebot.commands.chat import ChatCommands
    from imagebot.commands.invocation import Invocation
    from imagebot.commands.ports import QueuedJob, ReplyPort


def describe_job(queued: QueuedJob | None) -> str:
    """`4 images of “a foggy harbour” with local`, or `10 prompt specs`."""
    job = queued.job if queued is not None else None
    if isinstance(job, PromptsJob):
        theme = f" of “{job.theme}”" if job.theme else ""
        return f"{job.count} prompt specs{theme}"
    if isinstance(job, GenerateJob):
        theme = f" of “{job.theme}”" if job.theme else ""
        if job.spec is not None and job.spec.title:
            theme = f" of “{job.spec.title}” again"
        noun = "image" if job.count == 1 else "images"
        return f"{job.count} {noun}{theme} with {job.provider}"
    if isinstance(job, UpscaleJob):
        return f"an upscale of image {job.image} with {job.provider}"
    if isinstance(job, VaryJob):
        return f"a variation of image {job.image} with {job.provider}"
    return "a request"


async def show(
    chat: ChatCommands, invocation: Invocation, port: ReplyPort, args: dict[str, Any]
) -> None:
    places = chat.queue.places(invocation.requester)
    if not places:
        await port.text("You have no request waiting or running.", private=True)
        return
    lines = ["Your requests:"]
    for job_id, place in places:
        where = "being made now" if place == 0 else f"number {place} in the queue"
        lines.append(f"• {describe_job(chat.queue.get(job_id))}: {where}")
    await port.text("\n".join(lines), private=True)


async def cancel(
    chat: ChatCommands, invocation: Invocation, port: ReplyPort, args: dict[str, Any]
) -> None:
    places = chat.queue.places(invocation.requester)
    described = [
        f"• {describe_job(chat.queue.get(job_id))}" + (" (was running)" if place == 0 else "")
        for job_id, place in places
    ]
    count = await chat.queue.cancel(invocation.requester)
    if count == 0:
        await port.text("You have no request to cancel.", private=True)
        return
    noun = "request" if count == 1 else "requests"
    await port.text("\n".join([f"Cancelled {count} {noun}:", *described]), private=True)
