"""The ports of the commands layer: how a command answers (ReplyPort), what it posts (BatchPost,
buttons), and the durable queue it hands work to (JobQueue), all implemented in bot/."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from imagebot.providers.base import UsageError

if TYPE_CHECKING:
    from imagebot.commands.jobs import Job
    from imagebot.commands.requester import Requester


@dataclass(frozen=True)
class ButtonId:
    """What a button does, packed into the id it carries: `ib:<action>:<batch>[:<image>]`.

    Button data comes back from the chat platform: it is untrusted input, unpacked here only.
    """

    action: str
    batch_id: str
    image: int | None = None

    ACTIONS: ClassVar[tuple[str, ...]] = ("reroll", "again", "delete", "upscale", "vary")
    PATTERN: ClassVar[str] = (
        r"ib:(?P<action>reroll|again|delete|upscale|vary):(?P<batch>[0-9a-f]{6,32})"
        r"(?::(?P<image>[1-9][0-9]?))?"
    )

    def pack(self) -> str:
        """The id to attach to a button (at most 64 bytes, Telegram's limit)."""
        tail = f":{self.image}" if self.image is not None else ""
        return f"ib:{self.action}:{self.batch_id}{tail}"

    @classmethod
    def unpack(cls, text: str) -> ButtonId:
        """The ButtonId a button carried; UsageError for anything we did not make."""
        match = re.fullmatch(cls.PATTERN, text or "")
        per_image = match is not None and match["action"] in ("upscale", "vary")
        if match is None or per_image != (match["image"] is not None):
            raise UsageError("that button is not one of this bot's; it does nothing")
        image = int(match["image"]) if match["image"] else None
        return cls(match["action"], match["batch"], image)


@dataclass(frozen=True)
class Button:
    """A button under a posted batch."""

    label: str
    target: ButtonId

    @property
    def custom_id(self) -> str:
        return self.target.pack()

    @property
    def action(self) -> str:
        return self.target.action


@dataclass(frozen=True)
class BatchPost:
    """One finished batch as every platform posts it: images, words, buttons, problems."""

    batch_id: str
    title: str
    description: str
    tags: list[str]
    provider: str
    model: str
    images: list[Path]
    buttons: list[list[Button]] = field(default_factory=list)  # rows of buttons
    errors: list[str] = field(default_factory=list)  # what failed, for the requester
    note: str | None = None  # e.g. "stable-diffusion was unavailable; rendered with horde"
    mention: str | None = None  # the requester to mention when answering outside the request
    spoiler: bool = False  # post the images hidden behind a spoiler (the chat's setting)


class ReplyPort(Protocol):
    """How a command answers one request. Adapters implement it per platform."""

    async def acknowledge(self, *, private: bool = False) -> None:
        """Say at once that the request was accepted (Discord: defer; Telegram: chat action)."""
        ...

    async def progress(self, text: str, preview: bytes | None = None) -> None:
        """Show how far the work is (and the latest preview image, where the platform can);
        adapters throttle edits to the platform's calm rate."""
        ...

    async def text(self, text: str, *, private: bool = False) -> None:
        """A plain message; `private` is ephemeral on Discord (errors, queue position)."""
        ...

    async def images(self, post: BatchPost) -> None:
        """Post a finished batch."""
        ...

    async def file(self, name: str, data: bytes, text: str, *, private: bool = False) -> None:
        """Attach a file (CSV exports, prompt lists, an upscaled image) with a short text."""
        ...

    async def delete_post(self) -> None:
        """Delete the post a button was pressed on (the delete button)."""
        ...


@dataclass(frozen=True)
class Ticket:
    """A job the queue accepted: its id, and its place (0 = starting now)."""

    job_id: str
    place: int


@dataclass(frozen=True)
class QueuedJob:
    """A job as the queue remembers it (for /queue, /cancel and the buttons' settings)."""

    id: str
    job: Job
    requester: Requester
    status: str  # accepted, running, done, failed, cancelled


class JobQueue(Protocol):
    """The durable queue (SQLite in one process, PostgreSQL across many), behind bot/."""

    async def submit(
        self, job: Job, requester: Requester, reply: dict[str, Any], port: ReplyPort
    ) -> Ticket:
        """Persist `job` as accepted and queue it; it is answered through `port`, or through a
        port rebuilt from `reply` after a restart."""
        ...

    def places(self, requester: Requester) -> list[tuple[str, int]]:
        """The requester's unfinished jobs and their places: 0 = running, 1 = next, ..."""
        ...

    async def cancel(self, requester: Requester) -> int:
        """Cancel the requester's waiting and running jobs; how many were cancelled."""
        ...

    def get(self, job_id: str) -> QueuedJob | None:
        """A job by id, whatever its status."""
        ...

    def images_used(self, requester: Requester, since: datetime) -> int:
        """Images the requester asked for since `since` that count against the quota."""
        ...


class RunningJob(Protocol):
    """A job as the worker runs it: what it is, who asked, where to answer, what came before."""

    id: str
    job: Job
    requester: Requester
    port: ReplyPort
    result: dict[str, Any] | None  # what an earlier run recorded before it was interrupted
    resumed: bool  # started by a previous process; the port was rebuilt from its address

    def record(self, result: dict[str, Any]) -> None:
        """Persist what the job made before answering, so a resume never makes it twice."""
        ...

    def finish(self, status: str = "done", error: str | None = None) -> None:
        """Mark the job answered; call right after the reply was confirmed."""
        ...
