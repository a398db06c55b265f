"""The fake Discord's world: snowflakes, users, guilds, channels, roles, members, messages.

Each object renders itself in the exact JSON shape Discord sends (API v10), which discord.py's
state parser reads (Member needs `flags` and `roles`, a text channel `position`, etc.).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

DISCORD_EPOCH_MS = 1420070400000

# Permission bits (https://discord.com/developers/docs/topics/permissions).
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
USE_APPLICATION_COMMANDS = 1 << 31
SEND_MESSAGES_IN_THREADS = 1 << 38
ALL_PERMISSIONS = (1 << 51) - 1
EVERYONE_PERMISSIONS = (
    VIEW_CHANNEL
    | SEND_MESSAGES
    | ADD_REACTIONS
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | USE_APPLICATION_COMMANDS
    | SEND_MESSAGES_IN_THREADS
)

# Message flags.
EPHEMERAL = 1 << 6
LOADING = 1 << 7
IS_COMPONENTS_V2 = 1 << 15


class Snowflakes:
    """Discord-shaped ids: milliseconds since the Discord epoch, shifted, plus a counter."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def next(self) -> str:
        """A fresh snowflake as Discord sends it (a decimal string)."""
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        return str((ms << 22) | (next(self._counter) & 0xFFF))


def iso_now() -> str:
    """The current time as Discord's ISO 8601 timestamps."""
    return datetime.now(UTC).isoformat()


@dataclass
class FakeUser:
    """A Discord user (bots included)."""

    id: str
    username: str
    bot: bool = False
    global_name: str | None = None

    def payload(self) -> dict[str, Any]:
        """The user object."""
        return {
            "id": self.id,
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": None,
            "bot": self.bot,
            "system": False,
            "public_flags": 0,
            "flags": 0,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
        }


@dataclass
class FakeRole:
    """A guild role; the @everyone role has the guild's id."""

    id: str
    name: str
    permissions: int
    position: int = 0
    managed: bool = False

    def payload(self) -> dict[str, Any]:
        """The role object."""
        return {
            "id": self.id,
            "name": self.name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": self.position,
            "permissions": str(self.permissions),
            "managed": self.managed,
            "mentionable": False,
            "flags": 0,
        }


@dataclass
class FakeChannel:
    """A guild text channel; overwrites are (role_or_member_id, allow, deny)."""

    id: str
    guild_id: str
    name: str
    position: int = 0
    type: int = 0
    topic: str | None = None
    overwrites: list[tuple[str, int, int]] = field(default_factory=list)

    def payload(self) -> dict[str, Any]:
        """The channel object."""
        return {
            "id": self.id,
            "type": self.type,
            "guild_id": self.guild_id,
            "name": self.name,
            "position": self.position,
            "parent_id": None,
            "topic": self.topic,
            "nsfw": False,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "flags": 0,
            "permission_overwrites": [
                {"id": target, "type": 0, "allow": str(allow), "deny": str(deny)}
                for target, allow, deny in self.overwrites
            ],
        }


@dataclass
class FakeMember:
    """A user's membership of a guild."""

    user: FakeUser
    role_ids: list[str] = field(default_factory=list)
    nick: str | None = None
    joined_at: str = field(default_factory=iso_now)

    @property
    def id(self) -> str:
        return self.user.id

    def payload(self, permissions: int | None = None) -> dict[str, Any]:
        """The guild member object (with `permissions` as interactions carry it)."""
        data: dict[str, Any] = {
            "user": self.user.payload(),
            "nick": self.nick,
            "avatar": None,
            "banner": None,
            "roles": list(self.role_ids),
            "joined_at": self.joined_at,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }
        if permissions is not None:
            data["permissions"] = str(permissions)
        return data


@dataclass
class FakeGuild:
    """A guild the bot is in."""

    id: str
    name: str
    owner_id: str
    roles: list[FakeRole] = field(default_factory=list)
    channels: list[FakeChannel] = field(default_factory=list)
    members: list[FakeMember] = field(default_factory=list)

    def channel(self, channel_id: str) -> FakeChannel | None:
        """The channel with this id, if it is in the guild."""
        return next((c for c in self.channels if c.id == str(channel_id)), None)

    def member(self, user_id: str) -> FakeMember | None:
        """The member with this user id, if any."""
        return next((m for m in self.members if m.id == str(user_id)), None)

    def permissions_for(self, member: FakeMember, channel: FakeChannel | None = None) -> int:
        """Discord's permission computation: base roles, admin, then channel overwrites."""
        if member.id == self.owner_id:
            return ALL_PERMISSIONS
        roles = {r.id: r for r in self.roles}
        perms = roles[self.id].permissions if self.id in roles else 0
        for role_id in member.role_ids:
            if role_id in roles:
                perms |= roles[role_id].permissions
        if perms & ADMINISTRATOR:
            return ALL_PERMISSIONS
        if channel is None:
            return perms
        by_target = {target: (allow, deny) for target, allow, deny in channel.overwrites}
        allow, deny = by_target.get(self.id, (0, 0))
        perms = (perms & ~deny) | allow
        role_allow = role_deny = 0
        for role_id in member.role_ids:
            a, d = by_target.get(role_id, (0, 0))
            role_allow |= a
            role_deny |= d
        perms = (perms & ~role_deny) | role_allow
        allow, deny = by_target.get(member.id, (0, 0))
        return (perms & ~deny) | allow

    def create_payload(self, *, all_members: bool, me: str) -> dict[str, Any]:
        """GUILD_CREATE's data; without GUILD_MEMBERS only the bot's own member is listed."""
        members = [m for m in self.members if all_members or m.id == me]
        return {
            "id": self.id,
            "name": self.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "owner_id": self.owner_id,
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": [r.payload() for r in self.roles],
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": self.channels[0].id if self.channels else None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "vanity_url_code": None,
            "description": None,
            "banner": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "public_updates_channel_id": None,
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
            "safety_alerts_channel_id": None,
            "joined_at": iso_now(),
            "large": False,
            "unavailable": False,
            "member_count": len(self.members),
            "voice_states": [],
            "members": [m.payload() for m in members],
            "channels": [c.payload() for c in self.channels],
            "threads": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }


@dataclass
class StoredAttachment:
    """A file Discord stored for a message (or an interaction option)."""

    id: str
    filename: str
    content_type: str
    data: bytes
    url: str
    description: str | None = None

    @property
    def size(self) -> int:
        return len(self.data)

    def payload(self) -> dict[str, Any]:
        """The attachment object."""
        data: dict[str, Any] = {
            "id": self.id,
            "filename": self.filename,
            "size": self.size,
            "url": self.url,
            "proxy_url": self.url,
            "content_type": self.content_type,
        }
        if self.description is not None:
            data["description"] = self.description
        return data


@dataclass
class StoredMessage:
    """A message the bot created through the REST API (channel post, response or followup)."""

    id: str
    channel_id: str
    guild_id: str | None
    author: FakeUser
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[StoredAttachment] = field(default_factory=list)
    flags: int = 0
    type: int = 0
    webhook_id: str | None = None
    interaction_id: str | None = None
    interaction_user: FakeUser | None = None
    interaction_type: int | None = None
    timestamp: str = field(default_factory=iso_now)
    edited_timestamp: str | None = None
    deleted: bool = False
    edits: int = 0
    pings: list[str] = field(default_factory=list)  # who Discord notified: "@everyone", "<@id>"

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    @property
    def loading(self) -> bool:
        return bool(self.flags & LOADING)

    @property
    def custom_ids(self) -> list[str]:
        """Every custom_id in the message's components, in order."""
        found: list[str] = []

        def walk(items: list[dict[str, Any]]) -> None:
            for item in items:
                if "custom_id" in item:
                    found.append(item["custom_id"])
                walk(item.get("components", []))

        walk(self.components)
        return found

    def component(self, custom_id: str) -> dict[str, Any] | None:
        """The component with this custom_id, if the message has it."""
        stack = list(self.components)
        while stack:
            item = stack.pop()
            if item.get("custom_id") == custom_id:
                return item
            stack.extend(item.get("components", []))
        return None

    def payload(self) -> dict[str, Any]:
        """The message object."""
        data: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "channel_id": self.channel_id,
            "author": self.author.payload(),
            "content": self.content,
            "timestamp": self.timestamp,
            "edited_timestamp": self.edited_timestamp,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [a.payload() for a in self.attachments],
            "embeds": [_rendered_embed(e, self.attachments) for e in self.embeds],
            "pinned": False,
            "flags": self.flags,
            "components": self.components,
        }
        if self.guild_id is not None:
            data["guild_id"] = self.guild_id
        if self.webhook_id is not None:
            data["webhook_id"] = self.webhook_id
            data["application_id"] = self.webhook_id
        if self.interaction_id is not None and self.interaction_user is not None:
            data["interaction_metadata"] = {
                "id": self.interaction_id,
                "type": self.interaction_type or 2,
                "user": self.interaction_user.payload(),
                "authorizing_integration_owners": {"0": self.guild_id or "0"},
            }
        return data


def _rendered_embed(embed: dict[str, Any], attachments: list[StoredAttachment]) -> dict[str, Any]:
    """The embed as Discord returns it: `rich`, with attachment:// URLs resolved."""
    by_name = {a.filename: a for a in attachments}
    out = dict(embed)
    out.setdefault("type", "rich")
    for key in ("image", "thumbnail"):
        media = out.get(key)
        if isinstance(media, dict) and str(media.get("url", "")).startswith("attachment://"):
            found = by_name.get(media["url"].removeprefix("attachment://"))
            if found is not None:
                out[key] = {**media, "url": found.url, "proxy_url": found.url}
    return out
