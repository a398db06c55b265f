"""The fake Discord gateway: hello, identify/READY/GUILD_CREATE, heartbeats, resume, dispatch.

discord.py asks for `?v=10&encoding=json&compress=zlib-stream` (zstd-stream when a zstd module
is installed): every frame is then one shared zlib stream, each message ending in a
Z_SYNC_FLUSH (00 00 ff ff), exactly as Discord sends it. Close codes are Discord's
(4003 not authenticated, 4004 bad token, 4005 already identified, 4013/4014 intents).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

if TYPE_CHECKING:
    from tests.fakes.discord_server import FakeDiscord

GUILDS = 1 << 0
GUILD_MEMBERS = 1 << 1
GUILD_MESSAGES = 1 << 9
PRIVILEGED = (1 << 1) | (1 << 8) | (1 << 15)  # members, presences, message content
# Application flags of a small bot whose privileged intents are switched on in the portal.
APP_FLAGS = (1 << 13) | (1 << 15) | (1 << 19)


class _Compressor:
    """Transport compression for one connection, as the query string asked."""

    def __init__(self, mode: str | None) -> None:
        self.mode = mode
        self._zlib = zlib.compressobj() if mode == "zlib-stream" else None
        self._zstd: Any = None
        if mode == "zstd-stream":
            try:
                import zstandard  # type: ignore[import-not-found]

                # One stream per connection, each message flushed to a block boundary.
                self._zstd = zstandard.ZstdCompressor().compressobj()
                self._zstd_flush = zstandard.COMPRESSOBJ_FLUSH_BLOCK
            except ImportError:
                self.mode = None  # plain text frames, which every client reads

    def frame(self, text: str) -> str | bytes:
        data = text.encode()
        if self._zlib is not None:
            return self._zlib.compress(data) + self._zlib.flush(zlib.Z_SYNC_FLUSH)
        if self._zstd is not None:
            return self._zstd.compress(data) + self._zstd.flush(self._zstd_flush)
        return text


@dataclass
class Connection:
    """One websocket connection."""

    ws: web.WebSocketResponse
    compressor: _Compressor
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    session: GatewaySession | None = None

    async def send(self, message: dict[str, Any]) -> None:
        if self.ws.closed:
            return
        async with self.lock:
            frame = self.compressor.frame(json.dumps(message))
            try:
                if isinstance(frame, bytes):
                    await self.ws.send_bytes(frame)
                else:
                    await self.ws.send_str(frame)
            except ConnectionError:
                pass


@dataclass
class GatewaySession:
    """A gateway session: survives its connection and can be resumed."""

    id: str
    intents: int
    identify: dict[str, Any]
    seq: int = 0
    sent: list[dict[str, Any]] = field(default_factory=list)
    connection: Connection | None = None
    ready: bool = False
    shard: tuple[int, int] = (0, 1)  # [shard_id, num_shards] of its IDENTIFY

    def owns(self, guild_id: str | int | None) -> bool:
        """Whether Discord sends this guild's events to this session's shard; events with no
        guild (DMs) go to shard 0."""
        shard_id, count = self.shard
        if guild_id is None:
            return shard_id == 0
        return shard_of(guild_id, count) == shard_id


def shard_of(guild_id: str | int, count: int) -> int:
    """Discord's shard formula."""
    return (int(guild_id) >> 22) % count


def valid_shard(shard: Any, expected: int) -> bool:
    """`[shard_id, num_shards]` with 0 <= shard_id < num_shards, for the bot's shard count."""
    if not isinstance(shard, list | tuple) or len(shard) != 2:
        return False
    shard_id, count = shard
    ints = isinstance(shard_id, int) and isinstance(count, int)
    return ints and count >= expected and 0 <= shard_id < count


class DiscordGateway:
    """The websocket endpoint at /gateway and the sessions of the bot."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.sessions: dict[str, GatewaySession] = {}
        self.connections: list[Connection] = []
        self.received: list[dict[str, Any]] = []  # every frame, tokens masked
        self.allowed_intents = PRIVILEGED  # privileged intents "enabled in the portal"
        self.last_session: GatewaySession | None = None
        self.resumes = 0
        self.query_log: list[dict[str, str]] = []

    @property
    def ready_sessions(self) -> list[GatewaySession]:
        return [s for s in self.sessions.values() if s.ready and s.connection is not None]

    @property
    def identifies(self) -> list[dict[str, Any]]:
        return [m["d"] for m in self.received if m.get("op") == 2]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Serve one websocket connection."""
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        self.query_log.append(dict(request.query))
        conn = Connection(ws, _Compressor(request.query.get("compress")))
        self.connections.append(conn)
        try:
            if request.query.get("v", "10") != "10":
                await ws.close(code=4012, message=b"Invalid API version")
                return ws
            if request.query.get("encoding", "json") != "json":
                await ws.close(code=4002, message=b"Decode error: only encoding=json is faked")
                return ws
            hello = {"heartbeat_interval": self.fake.heartbeat_interval_ms, "_trace": ["fake"]}
            await conn.send({"op": 10, "d": hello, "s": None, "t": None})
            async for msg in ws:
                if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    break
                raw = msg.data if msg.type == WSMsgType.TEXT else msg.data.decode()
                try:
                    frame = json.loads(raw)
                except ValueError:
                    await ws.close(code=4002, message=b"Decode error")
                    break
                if not await self._on_frame(conn, frame):
                    break
        finally:
            if conn.session is not None and conn.session.connection is conn:
                conn.session.connection = None
            self.connections.remove(conn)
            self.fake.notify()
        return ws

    async def _on_frame(self, conn: Connection, frame: dict[str, Any]) -> bool:
        """Handle one client frame; False once the connection was closed."""
        op, data = frame.get("op"), frame.get("d")
        logged = dict(frame)
        if isinstance(data, dict) and "token" in data:
            logged["d"] = {**data, "token": "<masked>"}
        self.received.append(logged)
        self.fake.notify()
        if op == 1:
            await conn.send({"op": 11, "d": None, "s": None, "t": None})
            return True
        if op == 2:
            return await self._identify(conn, data or {})
        if op == 6:
            return await self._resume(conn, data or {})
        if conn.session is None:
            await conn.ws.close(code=4003, message=b"Not authenticated.")
            return False
        if op == 8:
            await self._member_chunk(conn.session, data or {})
            return True
        if op in (3, 4):  # presence and voice state updates: logged only
            return True
        await conn.ws.close(code=4001, message=b"Unknown opcode.")
        return False

    def _token_ok(self, token: Any) -> bool:
        return isinstance(token, str) and token.removeprefix("Bot ") == self.fake.token

    async def _identify(self, conn: Connection, data: dict[str, Any]) -> bool:
        if conn.session is not None:
            await conn.ws.close(code=4005, message=b"Already authenticated.")
            return False
        if not self._token_ok(data.get("token")):
            await conn.ws.close(code=4004, message=b"Authentication failed.")
            return False
        intents = data.get("intents")
        if not isinstance(intents, int) or intents < 0:
            await conn.ws.close(code=4013, message=b"Invalid intent(s).")
            return False
        if intents & PRIVILEGED & ~self.allowed_intents:
            await conn.ws.close(code=4014, message=b"Disallowed intent(s).")
            return False
        shard = data.get("shard")
        if shard is None and self.fake.shard_count > 1:
            await conn.ws.close(code=4011, message=b"Sharding required.")
            return False
        if shard is not None and not valid_shard(shard, self.fake.shard_count):
            await conn.ws.close(code=4010, message=b"Invalid shard.")
            return False
        session = GatewaySession(secrets.token_hex(16), intents, data, connection=conn)
        session.shard = (shard[0], shard[1]) if shard is not None else (0, 1)
        conn.session = session
        self.sessions[session.id] = session
        self.last_session = session
        fake = self.fake
        guilds = [g for g in fake.guilds if session.owns(g.id)]
        me = {**fake.bot_user.payload(), "verified": True, "mfa_enabled": False, "email": None}
        ready: dict[str, Any] = {
            "v": 10,
            "user": me,
            "guilds": [{"id": g.id, "unavailable": True} for g in guilds],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": fake.gateway_url,
            "application": {"id": fake.application_id, "flags": APP_FLAGS},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": ["fake"],
            "user_settings": {},
            "auth": {},
        }
        if shard is not None:
            ready["shard"] = list(shard)
        await self._dispatch_to(session, "READY", ready)
        if intents & GUILDS:
            for guild in guilds:
                payload = guild.create_payload(
                    all_members=bool(intents & GUILD_MEMBERS), me=fake.bot_user.id
                )
                await self._dispatch_to(session, "GUILD_CREATE", payload)
        session.ready = True
        fake.notify()
        return True

    async def _resume(self, conn: Connection, data: dict[str, Any]) -> bool:
        if not self._token_ok(data.get("token")):
            await conn.ws.close(code=4004, message=b"Authentication failed.")
            return False
        session = self.sessions.get(str(data.get("session_id")))
        if session is None:
            await conn.send({"op": 9, "d": False, "s": None, "t": None})
            return True
        old = session.connection
        if old is not None and old is not conn:
            await old.ws.close(code=4000, message=b"Session resumed elsewhere")
        session.connection = conn
        conn.session = session
        self.resumes += 1
        seq = data.get("seq") or 0
        for message in session.sent:
            if message["s"] > seq:
                await conn.send(message)
        await self._dispatch_to(session, "RESUMED", {"_trace": ["fake"]})
        self.fake.notify()
        return True

    async def _member_chunk(self, session: GatewaySession, data: dict[str, Any]) -> None:
        guild = self.fake.find_guild(str(data.get("guild_id")))
        if guild is None:
            return
        wanted = {str(u) for u in data.get("user_ids") or []}
        members = [m for m in guild.members if not wanted or m.id in wanted]
        chunk: dict[str, Any] = {
            "guild_id": guild.id,
            "members": [m.payload() for m in members],
            "chunk_index": 0,
            "chunk_count": 1,
        }
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        await self._dispatch_to(session, "GUILD_MEMBERS_CHUNK", chunk)

    async def _dispatch_to(self, session: GatewaySession, event: str, data: Any) -> None:
        session.seq += 1
        message = {"op": 0, "s": session.seq, "t": event, "d": data}
        session.sent.append(message)
        if session.connection is not None:
            await session.connection.send(message)

    def session_for(self, data: Any) -> GatewaySession | None:
        """The ready session of the shard owning the event's guild (the latest one, as a
        reconnecting bot replaces its session); without shards, the bot's session."""
        guild_id = data.get("guild_id") if isinstance(data, dict) else None
        ready = [s for s in self.sessions.values() if s.ready and s.owns(guild_id)]
        if self.last_session in ready:
            return self.last_session
        return ready[-1] if ready else None

    async def dispatch(self, event: str, data: Any) -> None:
        """Send a dispatch to the session of the shard owning its guild (buffered for its
        resume if disconnected)."""
        session = self.session_for(data)
        if session is None:
            raise RuntimeError("no bot shard owning that guild has identified on the fake yet")
        await self._dispatch_to(session, event, data)

    def wants(self, intent: int) -> bool:
        """Whether the bot's session asked for this intent."""
        return self.last_session is not None and bool(self.last_session.intents & intent)

    async def send_op(self, op: int, data: Any) -> None:
        """Send a non-dispatch opcode (7 reconnect, 9 invalid session) on the live connection."""
        session = self.last_session
        if session is None or session.connection is None:
            raise RuntimeError("no bot is connected to the fake gateway")
        if op == 9 and not data:
            self.sessions.pop(session.id, None)
        await session.connection.send({"op": op, "d": data, "s": None, "t": None})

    async def disconnect(self, code: int) -> None:
        """Close the live connection; the session stays resumable."""
        session = self.last_session
        if session is None or session.connection is None:
            raise RuntimeError("no bot is connected to the fake gateway")
        await session.connection.ws.close(code=code, message=b"fake disconnect")

    async def close_all(self) -> None:
        for conn in list(self.connections):
            await conn.ws.close(code=1001, message=b"fake shutting down")
