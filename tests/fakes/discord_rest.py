"""The fake Discord REST API (v10): login, gateway lookup, messages, interactions, webhooks.

Every request under /api/v10 is logged; bot routes need `Authorization: Bot <token>`
(401 {"message": "401: Unauthorized", "code": 0}); interaction callbacks and webhook routes
with a token need none, like on Discord. Message bodies come as JSON or multipart
(payload_json + files[n]); uploaded files are stored and served back at their `url`.
Scripted failures (fake.fail_next / fake.rate_limit) answer before the handler runs.
"""

from __future__ import annotations

import asyncio
import json
import math
import mimetypes
import re
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.discord_commands import CommandRoutes
from tests.fakes.discord_gateway import GUILD_MESSAGES
from tests.fakes.discord_limits import DiscordError, api_error, json_response, validate_message
from tests.fakes.discord_messages import MessageRoutes
from tests.fakes.discord_records import RECORD, Failure, LoggedRequest, Upload
from tests.fakes.discord_world import StoredAttachment

if TYPE_CHECKING:
    from tests.fakes.discord_server import FakeDiscord

PREFIX = "/api/v10"
# Routes Discord serves without a bot token: the gateway lookup and token-bearing webhooks.
TOKEN_ROUTES = re.compile(r"^/(gateway$|webhooks/\d+/[^/]+|interactions/\d+/[^/]+/callback)(/|$)")
FILE_FIELD = re.compile(r"^files?\[?(\d*)\]?$")


class DiscordRest:
    """Routes, middleware and body parsing of the fake REST API."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.commands = CommandRoutes(fake)
        self.messages = MessageRoutes(fake, self)

    def add_routes(self, app: web.Application) -> None:
        """Mount every route on the app."""
        app.middlewares.append(self._middleware)
        r = app.router
        r.add_get(PREFIX + "/gateway", self._gateway)
        r.add_get(PREFIX + "/gateway/bot", self._gateway_bot)
        r.add_get(PREFIX + "/users/@me", self._me)
        r.add_get(PREFIX + "/oauth2/applications/@me", self._application)
        r.add_get(PREFIX + "/applications/@me", self._application)
        r.add_get(PREFIX + "/channels/{channel_id}", self._channel)
        r.add_get(PREFIX + "/guilds/{guild_id}", self._guild)
        r.add_get(PREFIX + "/guilds/{guild_id}/channels", self._guild_channels)
        r.add_get(PREFIX + "/guilds/{guild_id}/roles", self._guild_roles)
        r.add_get(PREFIX + "/guilds/{guild_id}/members/{user_id}", self._guild_member)
        r.add_get("/attachments/{channel_id}/{attachment_id}/{filename}", self._cdn)
        self.commands.add_routes(app, PREFIX)
        self.messages.add_routes(app, PREFIX)

    # ------------------------------------------------------------------ plumbing

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if not request.path.startswith(PREFIX + "/"):
            return await handler(request)
        path = request.path.removeprefix(PREFIX)
        headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        record = LoggedRequest(request.method, path, dict(request.query), headers)
        record.received_at = asyncio.get_running_loop().time()
        self.fake.requests.append(record)
        request[RECORD] = record
        try:
            needs_auth = not TOKEN_ROUTES.match(path)
            if needs_auth and request.headers.get("Authorization") != f"Bot {self.fake.token}":
                raise api_error(401, 0, "401: Unauthorized")
            failure = self.fake.take_failure(request.method, path)
            if failure is not None:
                response = await self._fail(failure)
            else:
                response = await handler(request)
        except DiscordError as exc:
            response = json_response(exc.body, status=exc.status)
        except web.HTTPNotFound:
            response = json_response({"message": "404: Not Found", "code": 0}, status=404)
        except web.HTTPMethodNotAllowed:
            body = {"message": "405: Method Not Allowed", "code": 0}
            response = json_response(body, status=405)
        record.status = response.status
        self.fake.notify()
        return response

    async def _fail(self, failure: Failure) -> web.StreamResponse:
        if failure.kind == "429":
            after = failure.retry_after
            body = {
                "message": "You are being rate limited.",
                "retry_after": after,
                "global": failure.global_,
            }
            headers = {
                "Retry-After": str(math.ceil(after)),
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": f"{time.time() + after:.3f}",
                "X-RateLimit-Reset-After": f"{after:.3f}",
                "X-RateLimit-Bucket": "fakebucket0000000000000000000000",
                "X-RateLimit-Scope": "global" if failure.global_ else "user",
                # discord.py treats a 429 without Via as a Cloudflare ban, not a rate limit.
                "Via": "1.1 google",
            }
            if failure.global_:
                headers["X-RateLimit-Global"] = "true"
            return json_response(body, status=429, headers=headers)
        if failure.kind in ("500", "502"):
            status = int(failure.kind)
            reason = "Internal Server Error" if status == 500 else "Bad Gateway"
            return json_response({"message": f"{status}: {reason}", "code": 0}, status=status)
        if failure.kind == "hang":
            try:
                await asyncio.wait_for(self.fake.closing.wait(), self.fake.hang_seconds)
            except TimeoutError:
                pass
            return json_response({"message": "504: Gateway Timeout", "code": 0}, status=504)
        return web.Response(body=b'{"id": "1", "content": ', content_type="application/json")

    async def read_body(self, request: web.Request) -> tuple[dict[str, Any], list[Upload]]:
        """A message body: JSON, or multipart with payload_json and files[n]."""
        payload: Any = {}
        uploads: list[Upload] = []
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            async for part in reader:
                data = bytes(await part.read(decode=False))  # type: ignore[union-attr]
                name = part.name or ""
                match = FILE_FIELD.match(name)
                if name == "payload_json":
                    payload = _parse_json(data)
                elif match and part.filename:
                    index = int(match.group(1) or len(uploads))
                    ctype = part.headers.get("Content-Type", "application/octet-stream")
                    uploads.append(Upload(index, part.filename, ctype, data))
        elif request.can_read_body:
            payload = _parse_json(await request.read())
        if not isinstance(payload, dict):
            raise api_error(400, 50109, "The request body contains invalid JSON.")
        record = request[RECORD]
        record.json, record.files = payload, uploads
        return payload, uploads

    # ------------------------------------------------------------------ attachments

    def store_attachment(
        self,
        channel_id: str,
        filename: str,
        data: bytes,
        content_type: str,
        description: str | None = None,
    ) -> StoredAttachment:
        """Keep an uploaded file and give it a loopback CDN url."""
        aid = self.fake.ids.next()
        guessed = mimetypes.guess_type(filename)[0]
        url = f"{self.fake.root_url}/attachments/{channel_id}/{aid}/{filename}"
        stored = StoredAttachment(aid, filename, guessed or content_type, data, url, description)
        self.fake.attachments[aid] = stored
        return stored

    def plan_attachments(
        self,
        payload: dict[str, Any],
        uploads: list[Upload],
        existing: list[StoredAttachment],
        *,
        editing: bool,
    ) -> tuple[list[StoredAttachment], list[tuple[Upload, dict[str, Any]]]]:
        """(existing attachments kept, uploads to store with their attachment entry)."""
        listed = payload.get("attachments")
        if listed is None:
            kept = list(existing) if editing else []
            return kept, [(u, {}) for u in uploads]
        by_id = {a.id: a for a in existing}
        by_index = {u.index: u for u in uploads}
        kept, new, used = [], [], set()
        for item in listed:
            key = str(item.get("id"))
            if key in by_id:
                kept.append(by_id[key])
            elif key.isdigit() and int(key) in by_index:
                new.append((by_index[int(key)], item))
                used.add(int(key))
        new.extend((u, {}) for u in uploads if u.index not in used)
        return kept, new

    def validate(
        self,
        payload: dict[str, Any],
        uploads: list[Upload],
        kept: list[StoredAttachment],
        *,
        require_body: bool,
    ) -> None:
        """Discord's limits (DiscordError when broken)."""
        validate_message(
            payload,
            [len(u.data) for u in uploads],
            upload_limit=self.fake.upload_limit,
            require_body=require_body,
            kept_attachments=len(kept),
        )

    def store_uploads(
        self, channel_id: str, new: list[tuple[Upload, dict[str, Any]]]
    ) -> list[StoredAttachment]:
        """Store planned uploads, honouring filename/description of their attachment entry."""
        return [
            self.store_attachment(
                channel_id,
                entry.get("filename") or upload.filename,
                upload.data,
                upload.content_type,
                entry.get("description"),
            )
            for upload, entry in new
        ]

    async def broadcast(self, event: str, data: dict[str, Any]) -> None:
        """Send a MESSAGE_* event when the bot asked for GUILD_MESSAGES, as Discord does."""
        gateway = self.fake.gateway
        if gateway.wants(GUILD_MESSAGES) and gateway.last_session is not None:
            await gateway.dispatch(event, data)

    # ------------------------------------------------------------------ simple routes

    async def _gateway(self, request: web.Request) -> web.Response:
        return json_response({"url": self.fake.gateway_url})

    async def _gateway_bot(self, request: web.Request) -> web.Response:
        limit = {"total": 1000, "remaining": 999, "reset_after": 14400000, "max_concurrency": 1}
        body = {
            "url": self.fake.gateway_url,
            "shards": self.fake.shard_count,  # what Discord recommends for the bot
            "session_start_limit": limit,
        }
        return json_response(body)

    async def _me(self, request: web.Request) -> web.Response:
        me = self.fake.bot_user.payload()
        me.update(verified=True, mfa_enabled=False, email=None, locale="en-US")
        return json_response(me)

    async def _application(self, request: web.Request) -> web.Response:
        fake = self.fake
        return json_response(
            {
                "id": fake.application_id,
                "name": fake.bot_user.username,
                "icon": None,
                "description": "imagebot under test",
                "summary": "",
                "type": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "verify_key": "00" * 32,
                "flags": 0,
                "owner": fake.owner.payload(),
                "team": None,
                "bot": fake.bot_user.payload(),
                "install_params": {"scopes": ["bot", "applications.commands"], "permissions": "0"},
                "integration_types_config": {"0": {}},
                "redirect_uris": [],
                "interactions_endpoint_url": None,
                "approximate_guild_count": len(fake.guilds),
            }
        )

    async def _channel(self, request: web.Request) -> web.Response:
        found = self.fake.find_channel(request.match_info["channel_id"])
        if found is None:
            raise api_error(404, 10003, "Unknown Channel")
        return json_response(found[1].payload())

    def _guild_of(self, request: web.Request) -> Any:
        guild = self.fake.find_guild(request.match_info["guild_id"])
        if guild is None:
            raise api_error(404, 10004, "Unknown Guild")
        return guild

    async def _guild(self, request: web.Request) -> web.Response:
        guild = self._guild_of(request)
        data = guild.create_payload(all_members=False, me=self.fake.bot_user.id)
        for key in ("members", "channels", "threads", "presences", "voice_states", "joined_at"):
            data.pop(key, None)
        return json_response(data)

    async def _guild_channels(self, request: web.Request) -> web.Response:
        return json_response([c.payload() for c in self._guild_of(request).channels])

    async def _guild_roles(self, request: web.Request) -> web.Response:
        return json_response([r.payload() for r in self._guild_of(request).roles])

    async def _guild_member(self, request: web.Request) -> web.Response:
        member = self._guild_of(request).member(request.match_info["user_id"])
        if member is None:
            raise api_error(404, 10007, "Unknown Member")
        return json_response(member.payload())

    async def _cdn(self, request: web.Request) -> web.Response:
        stored = self.fake.attachments.get(request.match_info["attachment_id"])
        if stored is None or stored.filename != request.match_info["filename"]:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=stored.data, content_type=stored.content_type)


def _parse_json(data: bytes) -> Any:
    try:
        return json.loads(data or b"{}")
    except ValueError as exc:
        raise api_error(400, 50109, "The request body contains invalid JSON.") from exc
