"""A loopback fake of Discord (REST API v10 + gateway) that the real discord.py can log into.

    async with FakeDiscord() as fake:
        discord.http.Route.BASE = fake.api_base            # what DISCORD_API_BASE carries
        await client.login(fake.token)
        _, url, _ = await client.http.get_bot_gateway()     # ws://127.0.0.1:port/gateway
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)    # discord.Client never asks itself
        asyncio.create_task(client.connect())
        record = await fake.send_slash_command("ping", {"count": 2})
        await fake.wait_for(lambda: fake.messages_for_interaction(record.id))

The world is one or more guilds with text channels, @everyone / Moderator (Manage Messages +
Manage Server) / bot roles, a moderator and a normal member. REST routes live in
discord_rest.py, the websocket in discord_gateway.py, limits in discord_limits.py.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import Any

from aiohttp import web

from tests.fakes.discord_events import build_component_interaction, build_slash_interaction
from tests.fakes.discord_gateway import DiscordGateway
from tests.fakes.discord_records import (
    CallbackRecord,
    Failure,
    InteractionRecord,
    LoggedRequest,
    Upload,
)
from tests.fakes.discord_rest import DiscordRest
from tests.fakes.discord_world import (
    EVERYONE_PERMISSIONS,
    MANAGE_GUILD,
    MANAGE_MESSAGES,
    FakeChannel,
    FakeGuild,
    FakeMember,
    FakeRole,
    FakeUser,
    Snowflakes,
    StoredAttachment,
    StoredMessage,
)
from tests.fakes.loopback import LoopbackServer

MiB = 1024 * 1024
FAILURE_KINDS = ("429", "500", "502", "hang", "malformed")
__all__ = [
    "CallbackRecord",
    "FakeDiscord",
    "InteractionRecord",
    "LoggedRequest",
    "StoredAttachment",
    "StoredMessage",
    "Upload",
]


class FakeDiscord(LoopbackServer):
    """The fake Discord; `async with` serves it on 127.0.0.1 at a random port."""

    def __init__(
        self,
        token: str = "FAKE0.discord.bot-token",
        *,
        guild_count: int = 1,
        upload_limit: int = 10 * MiB,
        ack_deadline: float = 3.0,
        token_lifetime: float = 15 * 60.0,
        heartbeat_interval_ms: int = 41250,
        hang_seconds: float = 30.0,
        shard_count: int = 1,
    ) -> None:
        self.token = token
        self.shard_count = shard_count  # GET /gateway/bot's `shards`; guild n on shard n % it
        self.upload_limit = upload_limit
        self.ack_deadline = ack_deadline
        self.token_lifetime = token_lifetime
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.hang_seconds = hang_seconds
        self.ids = Snowflakes()
        self.application_id = self.ids.next()
        self.bot_user = FakeUser(self.application_id, "imagebot-test", bot=True)
        self.owner = FakeUser(self.ids.next(), "owner", global_name="Owner")
        self.moderator_user = FakeUser(self.ids.next(), "moddy", global_name="Moddy")
        self.member_user = FakeUser(self.ids.next(), "plainuser", global_name="Plain User")
        self.guilds: list[FakeGuild] = [self._make_guild(n) for n in range(guild_count)]
        self.requests: list[LoggedRequest] = []
        self.interactions: dict[str, InteractionRecord] = {}
        self.messages: dict[str, StoredMessage] = {}
        self.callbacks: list[CallbackRecord] = []
        self.followups: list[StoredMessage] = []
        self.channel_messages: list[StoredMessage] = []
        self.attachments: dict[str, StoredAttachment] = {}
        self.global_commands: list[dict[str, Any]] = []
        self.guild_commands: dict[str, list[dict[str, Any]]] = {}
        self.command_syncs: list[tuple[str | None, list[dict[str, Any]]]] = []
        self._failures: list[Failure] = []
        self._changed = asyncio.Event()
        LoopbackServer.__init__(self)
        self.rest = DiscordRest(self)
        self.gateway = DiscordGateway(self)

    def _make_guild(self, index: int) -> FakeGuild:
        gid = self.ids.next()
        if self.shard_count > 1:  # move the id's timestamp so guild n lands on shard n % N
            ms = int(gid) >> 22
            ms += (index - ms) % self.shard_count
            gid = str(ms << 22 | (int(gid) & ((1 << 22) - 1)))
        mod_role = FakeRole(self.ids.next(), "Moderator", MANAGE_MESSAGES | MANAGE_GUILD, 2)
        bot_role = FakeRole(self.ids.next(), "imagebot", EVERYONE_PERMISSIONS, 1, managed=True)
        member_role = FakeRole(self.ids.next(), "Member", 0, 1)
        return FakeGuild(
            id=gid,
            name=f"Fake Guild {index + 1}",
            owner_id=self.owner.id,
            roles=[
                FakeRole(gid, "@everyone", EVERYONE_PERMISSIONS),
                mod_role,
                bot_role,
                member_role,
            ],
            channels=[
                FakeChannel(self.ids.next(), gid, "general", 0, topic="chat"),
                FakeChannel(self.ids.next(), gid, "images", 1),
            ],
            members=[
                FakeMember(self.bot_user, [bot_role.id]),
                FakeMember(self.owner, []),
                FakeMember(self.moderator_user, [mod_role.id]),
                FakeMember(self.member_user, [member_role.id]),
            ],
        )

    # ------------------------------------------------------------------ lifecycle

    shutdown_timeout = 0.5

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=self.upload_limit * 4 + MiB)
        self.rest.add_routes(app)
        app.router.add_get("/gateway", self.gateway.handle)
        return app

    async def before_stop(self) -> None:
        await self.gateway.close_all()  # every websocket closed before the runner stops

    async def close(self) -> None:
        """Close every websocket, release hung requests, stop serving (the same as stop())."""
        await self.stop()

    @property
    def root_url(self) -> str:
        return self.url

    @property
    def api_base(self) -> str:
        """What discord.http.Route.BASE (DISCORD_API_BASE) should be."""
        return f"{self.root_url}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self._port}/gateway"

    # ------------------------------------------------------------------ the world

    @property
    def guild(self) -> FakeGuild:
        return self.guilds[0]

    @property
    def channel(self) -> FakeChannel:
        return self.guild.channels[0]

    @property
    def moderator(self) -> FakeMember:
        member = self.guild.member(self.moderator_user.id)
        assert member is not None
        return member

    @property
    def member(self) -> FakeMember:
        """The normal (non-moderator) member."""
        member = self.guild.member(self.member_user.id)
        assert member is not None
        return member

    def find_guild(self, guild_id: str) -> FakeGuild | None:
        return next((g for g in self.guilds if g.id == str(guild_id)), None)

    def find_channel(self, channel_id: str) -> tuple[FakeGuild, FakeChannel] | None:
        for guild in self.guilds:
            channel = guild.channel(channel_id)
            if channel is not None:
                return guild, channel
        return None

    # ------------------------------------------------------------------ scripting

    def fail_next(
        self,
        kind: str,
        times: int = 1,
        *,
        method: str | None = None,
        path: str | None = None,
        retry_after: float = 0.2,
        global_: bool = False,
    ) -> None:
        """Fail the next `times` REST requests whose path contains `path` (and method matches)."""
        if kind not in FAILURE_KINDS:
            raise ValueError(f"unknown failure kind {kind!r}; one of {FAILURE_KINDS}")
        failure = Failure(kind, method.upper() if method else None, path, retry_after, global_)
        self._failures.extend(failure for _ in range(times))

    def rate_limit(
        self,
        path: str,
        times: int = 1,
        *,
        method: str | None = None,
        retry_after: float = 0.2,
        global_: bool = False,
    ) -> None:
        """Answer the next `times` matching requests with 429 and Discord's rate-limit headers."""
        self.fail_next(
            "429", times, method=method, path=path, retry_after=retry_after, global_=global_
        )

    def take_failure(self, method: str, path: str) -> Failure | None:
        """The first scripted failure matching this request, removed from the script."""
        for failure in self._failures:
            if failure.method not in (None, method) or (failure.path and failure.path not in path):
                continue
            self._failures.remove(failure)
            return failure
        return None

    # ------------------------------------------------------------------ gateway control

    async def disconnect(self, code: int = 4000) -> None:
        """Close the bot's websocket (4000: unknown error, so discord.py resumes)."""
        await self.gateway.disconnect(code)

    async def request_reconnect(self) -> None:
        """Send op 7 RECONNECT, as Discord does before moving a session."""
        await self.gateway.send_op(7, None)

    async def invalidate_session(self, resumable: bool = False) -> None:
        """Send op 9 INVALID_SESSION."""
        await self.gateway.send_op(9, resumable)

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send any dispatch event (op 0) to the connected bot."""
        await self.gateway.dispatch(event, data)

    async def wait_until_ready(self, timeout: float = 10.0) -> None:
        """Wait until a bot identified and got READY plus every GUILD_CREATE."""
        await self.wait_for(lambda: self.gateway.ready_sessions, timeout, "gateway READY")

    # ------------------------------------------------------------------ interactions

    async def send_slash_command(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        user: FakeMember | str | int | None = None,
        guild: FakeGuild | str | int | None = None,
        channel: FakeChannel | str | int | None = None,
        locale: str = "en-US",
    ) -> InteractionRecord:
        """Send INTERACTION_CREATE for a registered chat-input command ("daily set" for subs).

        guild, channel and user are objects of the fake's world or their ids; they default to
        the first guild, its first channel and the normal member.
        """
        guild, channel, user = self._place(guild, channel, user)
        payload = build_slash_interaction(
            self, guild, channel, user, name, options or {}, self._token(), locale
        )
        record = self._record(payload, user, name=name)
        await self.gateway.dispatch("INTERACTION_CREATE", payload)
        return record

    async def click_button(
        self,
        message: StoredMessage | str,
        custom_id: str,
        user: FakeMember | str | int | None = None,
        *,
        values: list[str] | None = None,
    ) -> InteractionRecord:
        """Click a component of a message the bot posted (values: for select menus)."""
        stored = message if isinstance(message, StoredMessage) else self.messages[str(message)]
        found = self.find_channel(stored.channel_id)
        if found is None:
            raise ValueError(f"message {stored.id} is not in a guild channel")
        guild, channel, user = self._place(found[0], found[1], user)
        payload = build_component_interaction(
            self, guild, channel, user, stored, custom_id, values, self._token()
        )
        record = self._record(payload, user, name=custom_id, message_id=stored.id)
        await self.gateway.dispatch("INTERACTION_CREATE", payload)
        return record

    def _place(
        self,
        guild: FakeGuild | str | int | None,
        channel: FakeChannel | str | int | None,
        user: FakeMember | str | int | None,
    ) -> tuple[FakeGuild, FakeChannel, FakeMember]:
        """Resolve ids to the world's objects; ValueError for ids the fake does not know."""
        if not isinstance(guild, FakeGuild):
            found_guild = self.guild if guild is None else self.find_guild(str(guild))
            if found_guild is None:
                raise ValueError(f"no guild {guild} in the fake")
            guild = found_guild
        if not isinstance(channel, FakeChannel):
            found_channel = guild.channels[0] if channel is None else guild.channel(str(channel))
            if found_channel is None:
                raise ValueError(f"no channel {channel} in guild {guild.id}")
            channel = found_channel
        if not isinstance(user, FakeMember):
            found_member = guild.member(self.member_user.id if user is None else str(user))
            if found_member is None:
                raise ValueError(f"no member {user} in guild {guild.id}")
            user = found_member
        return guild, channel, user

    def _token(self) -> str:
        return "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(48)

    def _record(self, payload: dict[str, Any], user: FakeMember, **extra: Any) -> InteractionRecord:
        loop = asyncio.get_running_loop()
        record = InteractionRecord(
            id=payload["id"],
            token=payload["token"],
            type=payload["type"],
            guild_id=payload["guild_id"],
            channel_id=payload["channel_id"],
            user=user,
            payload=payload,
            created_at=loop.time(),
            **extra,
        )
        self.interactions[record.id] = record
        return record

    def interaction_by_token(self, token: str) -> InteractionRecord | None:
        return next((r for r in self.interactions.values() if r.token == token), None)

    # ------------------------------------------------------------------ accessors and waits

    def messages_for_interaction(self, interaction_id: str) -> list[StoredMessage]:
        """The live messages an interaction produced: the original response, then followups."""
        record = self.interactions[str(interaction_id)]
        ids = [record.original_message_id, *record.followup_ids]
        found = [self.messages[i] for i in ids if i is not None and i in self.messages]
        return [m for m in found if not m.deleted and not m.loading]

    def requests_to(self, path: str, method: str | None = None) -> list[LoggedRequest]:
        """The logged REST requests whose path contains `path`."""
        return [r for r in self.requests if path in r.path and method in (None, r.method)]

    def commands_for(self, guild_id: str | None = None) -> list[dict[str, Any]]:
        """The registered commands: global, or those of one guild."""
        if guild_id is None:
            return self.global_commands
        return self.guild_commands.get(str(guild_id), [])

    def notify(self) -> None:
        """Wake everything in wait_for (called after each change)."""
        self._changed.set()

    async def wait_for(
        self, predicate: Callable[[], Any], timeout: float = 10.0, what: str = ""
    ) -> Any:
        """Wait until predicate() is truthy and return its value; AssertionError on time-out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
            self._changed.clear()
            # Also poll: predicates may watch the client's state, which never notifies us.
            try:
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.05))
            except TimeoutError:
                pass
