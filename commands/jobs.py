"""The jobs commands hand to the queue: frozen, typed, and JSON both ways.

A job is validated once, when it is admitted; a resumed job is rebuilt from its JSON and only
re-checks that its provider is still configured.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any, ClassVar

from imagebot.providers.base import PromptSpec


@dataclass(frozen=True)
class GenerateJob:
    """COUNT images of one new prompt spec (or of `spec` again), for a chat or a schedule."""

    kind: ClassVar[str] = "generate"
    count: int
    size: str
    provider: str
    prompt_source: str
    theme: str | None = None
    role: str | None = None
    spec: PromptSpec | None = None  # render this spec again (the "same prompt" button)
    schedule: str | None = None  # the daily schedule this post is for
    spoiler: bool = False

    @property
    def image_count(self) -> int:
        return self.count

    @property
    def lane(self) -> str:
        """What caps it: the provider's concurrency and requests-per-minute."""
        return self.provider


@dataclass(frozen=True)
class PromptsJob:
    """COUNT prompt specs, attached as prompts.csv."""

    kind: ClassVar[str] = "prompts"
    count: int
    prompt_source: str
    theme: str | None = None
    role: str | None = None

    image_count: ClassVar[int] = 0
    lane: ClassVar[str] = "prompts"


@dataclass(frozen=True)
class UpscaleJob:
    """Image N of a batch at twice its size, posted as a file and archived beside it."""

    kind: ClassVar[str] = "upscale"
    batch_id: str
    image: int
    provider: str

    image_count: ClassVar[int] = 1

    @property
    def lane(self) -> str:
        return self.provider


@dataclass(frozen=True)
class VaryJob:
    """One new image from image N of a batch (image-to-image), posted as a new batch."""

    kind: ClassVar[str] = "vary"
    batch_id: str
    image: int
    provider: str
    strength: float = 0.55
    spoiler: bool = False

    image_count: ClassVar[int] = 1

    @property
    def lane(self) -> str:
        return self.provider


Job = GenerateJob | PromptsJob | UpscaleJob | VaryJob
JOB_TYPES: dict[str, type[Job]] = {
    cls.kind: cls for cls in (GenerateJob, PromptsJob, UpscaleJob, VaryJob)
}


def job_to_json(job: Job) -> dict[str, Any]:
    """The job's fields as JSON-able values (its kind is stored beside them)."""
    # Field by field, not dataclasses.asdict: its deep copy cost a tenth of an admission.
    data = {field.name: getattr(job, field.name) for field in _fields(type(job))}
    if data.get("spec") is not None:
        data["spec"] = dataclasses.asdict(data["spec"])
    return data


@functools.cache
def _fields(cls: type) -> tuple[dataclasses.Field, ...]:
    return dataclasses.fields(cls)


def job_from_json(kind: str, data: dict[str, Any]) -> Job:
    """Rebuild a stored job; unknown keys (from a newer version) are ignored."""
    cls = JOB_TYPES.get(kind)
    if cls is None:
        raise ValueError(f"unknown job kind {kind!r}")
    names = {f.name for f in _fields(cls)}
    values = {key: value for key, value in data.items() if key in names}
    if cls is GenerateJob and values.get("spec"):
        values["spec"] = PromptSpec(**values["spec"])
    return cls(**values)
