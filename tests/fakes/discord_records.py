"""What the fake Discord received and did: requests, uploads, interactions, callbacks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.discord_world import FakeMember, StoredAttachment


@dataclass
class Upload:
    """One file part of a multipart request (`files[n]`)."""

    index: int
    filename: str
    content_type: str
    data: bytes


@dataclass
class LoggedRequest:
    """One REST request the fake received; the Authorization header is never kept."""

    method: str
    path: str  # relative to /api/v10, e.g. "/channels/1/messages"
    query: dict[str, str]
    headers: dict[str, str]
    json: Any = None
    files: list[Upload] = field(default_factory=list)
    status: int = 0
    received_at: float = 0.0  # the fake's loop time when the request arrived


@dataclass
class CallbackRecord:
    """An interaction response (POST /interactions/{id}/{token}/callback)."""

    interaction_id: str
    type: int
    data: dict[str, Any]
    attachments: list[StoredAttachment] = field(default_factory=list)

    @property
    def flags(self) -> int:
        return int(self.data.get("flags") or 0)

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & 64)


@dataclass
class InteractionRecord:
    """An interaction the fake sent through the gateway, and what the bot did with it."""

    id: str
    token: str
    type: int  # 2 application command, 3 component
    guild_id: str
    channel_id: str
    user: FakeMember
    payload: dict[str, Any]
    created_at: float
    name: str = ""  # command name ("daily set" for subcommands) or component custom_id
    message_id: str | None = None  # the message a component belongs to
    callbacks: list[CallbackRecord] = field(default_factory=list)
    original_message_id: str | None = None
    followup_ids: list[str] = field(default_factory=list)

    @property
    def acked(self) -> bool:
        return bool(self.callbacks)

    @property
    def response_type(self) -> int | None:
        return self.callbacks[0].type if self.callbacks else None


@dataclass
class Failure:
    """A scripted failure for the next matching REST request."""

    kind: str
    method: str | None
    path: str | None
    retry_after: float
    global_: bool


# Where the REST middleware keeps the request's log entry, for handlers to fill in.
RECORD: Any = web.RequestKey("discord_record", LoggedRequest)
