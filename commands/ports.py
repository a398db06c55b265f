"""What a command can say back, whatever the platform: the reply port and its payloads."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Button:
    """A button under a posted batch. `action` is reroll, again or delete."""

    label: str
    action: str
    batch_id: str

    @property
    def custom_id(self) -> str:
        """Stable id the button carries (<= 64 bytes for Telegram), e.g. `ib:reroll:<id>`."""
        return f"ib:{self.action}:{self.batch_id}"


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
    buttons: list[Button] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # what failed, for the requester
    note: str | None = None  # e.g. "stable-diffusion was unavailable; rendered with horde"
    mention: str | None = None  # the requester to mention when answering outside the request


class ReplyPort(Protocol):
    """How a command answers one request. Adapters implement it per platform."""

    async def acknowledge(self) -> None:
        """Say at once that the request was accepted (Discord: defer; Telegram: chat action)."""
        ...

    async def progress(self, text: str) -> None:
        """Show how far the work is; adapters throttle edits to the platform's calm rate."""
        ...

    async def text(self, text: str, *, private: bool = False) -> None:
        """A plain message; `private` is ephemeral on Discord (errors, queue position)."""
        ...

    async def images(self, post: BatchPost) -> None:
        """Post a finished batch."""
        ...

    async def file(self, name: str, data: bytes, text: str, *, private: bool = False) -> None:
        """Attach a file (CSV exports and prompt lists) with a short text."""
        ...

    async def delete_post(self) -> None:
        """Delete the post a button was pressed on (the delete button)."""
        ...
