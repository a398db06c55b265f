"""The web chat's ReplyPort: each answer is an event in the visitor's channel, streamed to the
page over Server-Sent Events and kept for a while, so a reload (or a job answered after a
restart) still shows it."""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from imagebot.commands.ports import BatchPost

BACKLOG = 200  # events kept per visitor
CHANNELS = 2000  # visitors remembered (least recently used dropped first)
FILES = 200  # downloads (exports, prompt lists) kept, in all
PREVIEW_MAX = 256 * 1024
WORKING = "Working on it…"


@dataclass
class Channel:
    """One visitor's conversation: numbered events and the streams waiting for more."""

    events: deque[tuple[int, dict[str, Any]]] = field(default_factory=lambda: deque(maxlen=BACKLOG))
    seq: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, event: dict[str, Any]) -> int:
        self.seq += 1
        self.events.append((self.seq, event))
        self.changed.set()
        self.changed = asyncio.Event()  # the next waiters wait for the next event
        return self.seq

    def since(self, after: int) -> list[tuple[int, dict[str, Any]]]:
        return [(seq, event) for seq, event in self.events if seq > after]


class ChatHub:
    """Every visitor's channel, and the files the chat handed out."""

    def __init__(self) -> None:
        self._channels: OrderedDict[str, Channel] = OrderedDict()
        self._files: OrderedDict[str, tuple[str, bytes, str]] = OrderedDict()

    def channel(self, visitor_id: str) -> Channel:
        channel = self._channels.get(visitor_id)
        if channel is None:
            channel = self._channels[visitor_id] = Channel()
            while len(self._channels) > CHANNELS:
                self._channels.popitem(last=False)
        self._channels.move_to_end(visitor_id)
        return channel

    def publish(self, visitor_id: str, event: dict[str, Any]) -> None:
        self.channel(visitor_id).add(event)

    def keep_file(self, visitor_id: str, name: str, data: bytes) -> str:
        """A one-visitor download link's key for `data`."""
        key = secrets.token_urlsafe(16)
        self._files[key] = (visitor_id, data, name)
        while len(self._files) > FILES:
            self._files.popitem(last=False)
        return key

    def file(self, visitor_id: str, key: str) -> tuple[str, bytes] | None:
        found = self._files.get(key)
        if found is None or found[0] != visitor_id:
            return None
        return found[2], found[1]


def image_url(batch_id: str, path: Any) -> str:
    return f"/batch/{batch_id}/files/{path.name}"


def post_event(post: BatchPost) -> dict[str, Any]:
    """A finished batch as the page draws it: images, words, buttons, problems."""
    return {
        "type": "images",
        "batch": post.batch_id,
        "title": post.title,
        "description": post.description,
        "tags": post.tags,
        "provider": post.provider,
        "model": post.model,
        "images": [image_url(post.batch_id, path) for path in post.images],
        "buttons": [[{"label": b.label, "id": b.custom_id} for b in row] for row in post.buttons],
        "errors": post.errors,
        "note": post.note,
        "spoiler": post.spoiler,
        "link": f"/batch/{post.batch_id}",
    }


class WebPort:
    """Answers one request of one visitor; rebuilt from `reply` after a restart."""

    def __init__(self, hub: ChatHub, reply: dict[str, Any]) -> None:
        self.hub = hub
        self.reply = reply
        self.visitor = str(reply["visitor"])
        self.request = str(reply.get("request") or "")

    def _send(self, event: dict[str, Any]) -> None:
        self.hub.publish(self.visitor, {**event, "request": self.request})

    async def acknowledge(self, *, private: bool = False) -> None:
        self._send({"type": "ack", "text": WORKING})

    async def progress(self, text: str, preview: bytes | None = None) -> None:
        event: dict[str, Any] = {"type": "progress", "text": text}
        if preview and len(preview) <= PREVIEW_MAX:
            event["preview"] = "data:image/jpeg;base64," + base64.b64encode(preview).decode()
        self._send(event)

    async def text(self, text: str, *, private: bool = False) -> None:
        self._send({"type": "text", "text": text})

    async def images(self, post: BatchPost) -> None:
        self._send(post_event(post))

    async def file(self, name: str, data: bytes, text: str, *, private: bool = False) -> None:
        key = self.hub.keep_file(self.visitor, name, data)
        self._send({"type": "file", "name": name, "text": text, "url": f"/chat/files/{key}"})

    async def delete_post(self) -> None:
        self._send({"type": "delete", "batch": self.reply.get("post")})
