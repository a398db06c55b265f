"""Message routes: channel messages, interaction callbacks, followups and @original edits.

Interaction rules are Discord's: a callback must come within `fake.ack_deadline` (3 s) or it
is 404 {"code": 10062, "message": "Unknown interaction"}; a second callback is 400 40060;
webhook routes need an acknowledged interaction (else 404 10015 Unknown Webhook) and a token
younger than `fake.token_lifetime` (15 min, else 401 50027). After a deferred response (type
5) the "thinking" message is @original, and the first followup replaces it, keeping the
defer's ephemeral flag.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.discord_limits import api_error, form_error, json_response
from tests.fakes.discord_records import CallbackRecord, InteractionRecord, Upload
from tests.fakes.discord_world import (
    ATTACH_FILES,
    EPHEMERAL,
    IS_COMPONENTS_V2,
    LOADING,
    SEND_MESSAGES,
    VIEW_CHANNEL,
    StoredMessage,
    iso_now,
)

if TYPE_CHECKING:
    from tests.fakes.discord_rest import DiscordRest
    from tests.fakes.discord_server import FakeDiscord

# Flags a bot may set on a message it sends: suppress embeds/notifications, components v2.
SETTABLE_FLAGS = (1 << 2) | (1 << 12) | IS_COMPONENTS_V2
COMMAND_TYPES = {4, 5, 9}
COMPONENT_TYPES = {4, 5, 6, 7, 9}


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true")


class MessageRoutes:
    """POST/PATCH/DELETE of messages through channels, callbacks and webhooks."""

    def __init__(self, fake: FakeDiscord, rest: DiscordRest) -> None:
        self.fake = fake
        self.rest = rest

    def add_routes(self, app: web.Application, prefix: str) -> None:
        r = app.router
        channel = prefix + "/channels/{channel_id}"
        r.add_post(channel + "/messages", self._channel_post)
        r.add_get(channel + "/messages/{message_id}", self._channel_get)
        r.add_patch(channel + "/messages/{message_id}", self._channel_edit)
        r.add_delete(channel + "/messages/{message_id}", self._channel_delete)
        r.add_post(channel + "/typing", self._typing)
        r.add_post(prefix + "/interactions/{interaction_id}/{token}/callback", self._callback)
        hook = prefix + "/webhooks/{app_id}/{token}"
        r.add_post(hook, self._followup)
        r.add_get(hook + "/messages/{message_id}", self._hook_get)
        r.add_patch(hook + "/messages/{message_id}", self._hook_edit)
        r.add_delete(hook + "/messages/{message_id}", self._hook_delete)

    # ------------------------------------------------------------------ building

    def _new_message(
        self,
        channel_id: str,
        payload: dict[str, Any],
        uploads: list[Upload],
        *,
        flags: int,
        interaction: InteractionRecord | None = None,
    ) -> StoredMessage:
        """Validate and store a new message."""
        kept, new = self.rest.plan_attachments(payload, uploads, [], editing=False)
        self.rest.validate(payload, [u for u, _ in new], kept, require_body=not flags & LOADING)
        found = self.fake.find_channel(channel_id)
        message = StoredMessage(
            id=self.fake.ids.next(),
            channel_id=channel_id,
            guild_id=found[0].id if found else None,
            author=self.fake.bot_user,
            content=payload.get("content") or "",
            embeds=list(payload.get("embeds") or []),
            components=list(payload.get("components") or []),
            attachments=self.rest.store_uploads(channel_id, new),
            flags=flags,
            pings=pings(payload),
        )
        if interaction is not None:
            message.webhook_id = self.fake.application_id
            message.interaction_id = interaction.id
            message.interaction_user = interaction.user.user
            message.interaction_type = interaction.type
            message.type = 20 if interaction.type == 2 else 0
        self.fake.messages[message.id] = message
        return message

    def _edit(self, message: StoredMessage, payload: dict[str, Any], uploads: list[Upload]) -> None:
        """Apply a PATCH body (or a followup replacing a loading message)."""
        kept, new = self.rest.plan_attachments(payload, uploads, message.attachments, editing=True)
        self.rest.validate(payload, [u for u, _ in new], kept, require_body=False)
        if "content" in payload:
            message.content = payload["content"] or ""
            message.pings = pings(payload)
        if "embeds" in payload:
            message.embeds = list(payload["embeds"] or [])
        if "components" in payload:
            message.components = list(payload["components"] or [])
        if "flags" in payload and payload["flags"] is not None:
            settable = int(payload["flags"]) & SETTABLE_FLAGS
            message.flags = (message.flags & ~SETTABLE_FLAGS) | settable
        message.attachments = kept + self.rest.store_uploads(message.channel_id, new)
        if message.loading:
            message.flags &= ~LOADING  # the deferred "thinking" message becomes the answer
        else:
            message.edits += 1
            message.edited_timestamp = iso_now()

    async def _announce(self, event: str, message: StoredMessage) -> None:
        if message.ephemeral or message.loading:
            return
        if event == "MESSAGE_DELETE":
            data = {"id": message.id, "channel_id": message.channel_id}
            if message.guild_id:
                data["guild_id"] = message.guild_id
            await self.rest.broadcast(event, data)
        else:
            await self.rest.broadcast(event, message.payload())

    # ------------------------------------------------------------------ channel messages

    def _channel_check(self, request: web.Request, needed: int) -> str:
        channel_id = request.match_info["channel_id"]
        found = self.fake.find_channel(channel_id)
        if found is None:
            raise api_error(404, 10003, "Unknown Channel")
        guild, channel = found
        bot = guild.member(self.fake.bot_user.id)
        perms = guild.permissions_for(bot, channel) if bot else 0
        if perms & needed != needed:
            raise api_error(403, 50013, "Missing Permissions")
        return channel_id

    def _channel_message(self, request: web.Request) -> StoredMessage:
        channel_id = self._channel_check(request, VIEW_CHANNEL)
        message = self.fake.messages.get(request.match_info["message_id"])
        if message is None or message.deleted or message.channel_id != channel_id:
            raise api_error(404, 10008, "Unknown Message")
        if message.ephemeral:
            raise api_error(404, 10008, "Unknown Message")
        return message

    async def _channel_post(self, request: web.Request) -> web.Response:
        payload, uploads = await self.rest.read_body(request)
        needed = VIEW_CHANNEL | SEND_MESSAGES | (ATTACH_FILES if uploads else 0)
        channel_id = self._channel_check(request, needed)
        flags = int(payload.get("flags") or 0) & SETTABLE_FLAGS
        message = self._new_message(channel_id, payload, uploads, flags=flags)
        self.fake.channel_messages.append(message)
        await self._announce("MESSAGE_CREATE", message)
        return json_response(message.payload())

    async def _channel_get(self, request: web.Request) -> web.Response:
        return json_response(self._channel_message(request).payload())

    async def _channel_edit(self, request: web.Request) -> web.Response:
        message = self._channel_message(request)
        payload, uploads = await self.rest.read_body(request)
        if message.author.id != self.fake.bot_user.id and set(payload) - {"flags"}:
            raise api_error(403, 50005, "Cannot edit a message authored by another user")
        self._edit(message, payload, uploads)
        await self._announce("MESSAGE_UPDATE", message)
        return json_response(message.payload())

    async def _channel_delete(self, request: web.Request) -> web.Response:
        message = self._channel_message(request)
        message.deleted = True
        await self._announce("MESSAGE_DELETE", message)
        return web.Response(status=204)

    async def _typing(self, request: web.Request) -> web.Response:
        self._channel_check(request, VIEW_CHANNEL | SEND_MESSAGES)
        return web.Response(status=204)

    # ------------------------------------------------------------------ interaction callback

    async def _callback(self, request: web.Request) -> web.Response:
        record = self.fake.interactions.get(request.match_info["interaction_id"])
        if record is None or record.token != request.match_info["token"]:
            raise api_error(404, 10062, "Unknown interaction")
        payload, uploads = await self.rest.read_body(request)
        if record.acked:
            raise api_error(400, 40060, "Interaction has already been acknowledged.")
        if asyncio.get_running_loop().time() - record.created_at > self.fake.ack_deadline:
            raise api_error(404, 10062, "Unknown interaction")
        kind = payload.get("type")
        allowed = COMMAND_TYPES if record.type == 2 else COMPONENT_TYPES
        if kind not in allowed:
            raise form_error(
                ["type"], "BASE_TYPE_CHOICES", f"Value must be one of {sorted(allowed)}."
            )
        data = payload.get("data") or {}
        if kind == 9:
            self._check_modal(data)
        message = self._respond(record, kind, data, uploads)
        callback = CallbackRecord(record.id, kind, data, message.attachments if message else [])
        record.callbacks.append(callback)
        self.fake.callbacks.append(callback)
        if message is not None and kind == 4:
            await self._announce("MESSAGE_CREATE", message)
        if not _truthy(request.query.get("with_response")):
            return web.Response(status=204)
        return json_response(self._callback_body(record, kind, message))

    def _respond(
        self, record: InteractionRecord, kind: int, data: dict[str, Any], uploads: list[Upload]
    ) -> StoredMessage | None:
        """The message a callback creates or changes (None for a modal)."""
        ephemeral = int(data.get("flags") or 0) & EPHEMERAL
        if kind in (4, 5):
            flags = ephemeral | (LOADING if kind == 5 else int(data.get("flags") or 0))
            flags &= SETTABLE_FLAGS | EPHEMERAL | LOADING
            body = data if kind == 4 else {}
            message = self._new_message(
                record.channel_id,
                body,
                uploads if kind == 4 else [],
                flags=flags,
                interaction=record,
            )
            record.original_message_id = message.id
            return message
        if kind in (6, 7):
            message = self.fake.messages[str(record.message_id)]
            if kind == 7:
                self._edit(message, data, uploads)
            record.original_message_id = message.id
            return message
        return None

    def _check_modal(self, data: dict[str, Any]) -> None:
        for key, limit in (("custom_id", 100), ("title", 45)):
            value = data.get(key)
            if not isinstance(value, str) or not 1 <= len(value) <= limit:
                raise form_error(
                    ["data", key],
                    "BASE_TYPE_BAD_LENGTH",
                    f"Must be between 1 and {limit} in length.",
                )
        if not 1 <= len(data.get("components") or []) <= 5:
            raise form_error(
                ["data", "components"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length."
            )

    def _callback_body(
        self, record: InteractionRecord, kind: int, message: StoredMessage | None
    ) -> dict[str, Any]:
        """The interaction callback response (with_response=true)."""
        interaction: dict[str, Any] = {"id": record.id, "type": record.type}
        if message is not None:
            interaction.update(
                response_message_id=message.id,
                response_message_loading=kind == 5,
                response_message_ephemeral=message.ephemeral,
            )
        body: dict[str, Any] = {"interaction": interaction, "resource": {"type": kind}}
        if message is not None and kind in (4, 5, 7):
            body["resource"]["message"] = message.payload()
        return body

    # ------------------------------------------------------------------ webhooks (followups)

    def _hook_record(self, request: web.Request) -> InteractionRecord:
        record = self.fake.interaction_by_token(request.match_info["token"])
        if request.match_info["app_id"] != self.fake.application_id or record is None:
            raise api_error(404, 10015, "Unknown Webhook")
        age = asyncio.get_running_loop().time() - record.created_at
        if age > self.fake.token_lifetime:
            raise api_error(401, 50027, "Invalid Webhook Token")
        if not record.acked:
            raise api_error(404, 10015, "Unknown Webhook")
        return record

    def _hook_message(self, request: web.Request, record: InteractionRecord) -> StoredMessage:
        wanted = request.match_info["message_id"]
        if wanted == "@original":
            wanted = record.original_message_id or ""
        allowed = {record.original_message_id, *record.followup_ids}
        message = self.fake.messages.get(wanted)
        if message is None or message.deleted or wanted not in allowed:
            raise api_error(404, 10008, "Unknown Message")
        return message

    async def _followup(self, request: web.Request) -> web.Response:
        record = self._hook_record(request)
        payload, uploads = await self.rest.read_body(request)
        body_keys = ("content", "embeds", "components", "attachments", "poll", "sticker_ids")
        if not uploads and not any(payload.get(k) for k in body_keys):
            raise api_error(400, 50006, "Cannot send an empty message")
        original = self.fake.messages.get(record.original_message_id or "")
        if original is not None and original.loading and record.response_type == 5:
            self._edit(original, payload, uploads)
            message = original
        else:
            flags = int(payload.get("flags") or 0) & (SETTABLE_FLAGS | EPHEMERAL)
            message = self._new_message(
                record.channel_id, payload, uploads, flags=flags, interaction=record
            )
            record.followup_ids.append(message.id)
        self.fake.followups.append(message)
        await self._announce("MESSAGE_CREATE", message)
        if not _truthy(request.query.get("wait")):
            return web.Response(status=204)
        return json_response(message.payload())

    async def _hook_get(self, request: web.Request) -> web.Response:
        record = self._hook_record(request)
        return json_response(self._hook_message(request, record).payload())

    async def _hook_edit(self, request: web.Request) -> web.Response:
        record = self._hook_record(request)
        message = self._hook_message(request, record)
        payload, uploads = await self.rest.read_body(request)
        was_loading = message.loading
        self._edit(message, payload, uploads)
        await self._announce("MESSAGE_CREATE" if was_loading else "MESSAGE_UPDATE", message)
        return json_response(message.payload())

    async def _hook_delete(self, request: web.Request) -> web.Response:
        record = self._hook_record(request)
        message = self._hook_message(request, record)
        message.deleted = True
        await self._announce("MESSAGE_DELETE", message)
        return web.Response(status=204)


MENTION = re.compile(r"@everyone|@here|<@!?(\d+)>|<@&(\d+)>")


def pings(payload: dict[str, Any]) -> list[str]:
    """Who a message notifies, as Discord decides from its content and `allowed_mentions`
    (absent: every mention in the text pings; `parse` lists the kinds allowed wholesale,
    `users` / `roles` the ids allowed one by one)."""
    allowed = payload.get("allowed_mentions")
    parse = {"everyone", "users", "roles"} if allowed is None else set(allowed.get("parse") or [])
    users = {str(u) for u in (allowed or {}).get("users") or []}
    roles = {str(r) for r in (allowed or {}).get("roles") or []}
    found = []
    for match in MENTION.finditer(payload.get("content") or ""):
        user, role = match.group(1), match.group(2)
        if user and ("users" in parse or user in users):
            found.append(f"<@{user}>")
        elif role and ("roles" in parse or role in roles):
            found.append(f"<@&{role}>")
        elif not (user or role) and "everyone" in parse:
            found.append(match.group(0))
    return found
