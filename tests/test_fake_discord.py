"""The fake Discord against the real discord.py client: login, sync, slash commands, buttons.

A throwaway commands.Bot with one app command `/ping` (defers, then sends a followup with a
PNG and an embed under a persistent button) logs into tests/fakes/discord_server.py exactly
as the real bot will: Route.BASE from the fake's api_base, the gateway URL from GET
/gateway/bot.
"""

from __future__ import annotations

import asyncio
import io
import json
import zlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
import pytest
import yarl
from discord import app_commands
from discord.ext import commands
from discord.gateway import DiscordWebSocket

from tests.fakes.discord_server import FakeDiscord

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99"
    b"=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
)


class AgainView(discord.ui.View):
    """A persistent view: timeout None and a stable custom_id, so it survives restarts."""

    def __init__(self, clicks: list[tuple[int, bool]]) -> None:
        super().__init__(timeout=None)
        self.clicks = clicks

    @discord.ui.button(label="Again", custom_id="ping:again", style=discord.ButtonStyle.primary)
    async def again(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        self.clicks.append((interaction.user.id, interaction.permissions.manage_messages))
        await interaction.response.send_message("clicked", ephemeral=True)


class PingBot(commands.Bot):
    """The smallest bot that does what imagebot does: defer, then post a file and an embed."""

    def __init__(self) -> None:
        super().__init__(
            command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0.05
        )
        self.clicks: list[tuple[int, bool]] = []
        self.counts: list[int] = []
        self.errors: list[BaseException] = []

    async def setup_hook(self) -> None:
        self.add_view(AgainView(self.clicks))

        @app_commands.command(name="ping", description="Answer with a picture")
        @app_commands.describe(count="how many pongs")
        async def ping(interaction: discord.Interaction, count: app_commands.Range[int, 1, 4] = 1):
            self.counts.append(count)
            await interaction.response.defer(thinking=True)
            embed = discord.Embed(title=f"pong x{count}", description="a tiny picture")
            embed.set_image(url="attachment://pong.png")
            file = discord.File(io.BytesIO(PNG), filename="pong.png")
            await interaction.followup.send(embed=embed, file=file, view=AgainView(self.clicks))

        async def on_error(interaction: discord.Interaction, error: Exception) -> None:
            self.errors.append(getattr(error, "original", error))

        daily = app_commands.Group(name="daily", description="Daily posts")

        @daily.command(name="set", description="Post every day at TIME")
        async def daily_set(interaction: discord.Interaction, time: str) -> None:
            csv = discord.File(io.BytesIO(b"time\n" + time.encode()), filename="daily.csv")
            await interaction.response.send_message(f"daily at {time}", ephemeral=True, file=csv)

        @daily.command(name="show", description="Show the daily post")
        async def daily_show(interaction: discord.Interaction) -> None:
            await interaction.response.defer(ephemeral=True, thinking=True)
            await interaction.edit_original_response(content="no daily post")

        self.tree.add_command(ping)
        self.tree.add_command(daily)
        self.tree.on_error = on_error  # type: ignore[method-assign]


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        yield server


@pytest.fixture
async def bot(fake: FakeDiscord) -> AsyncIterator[PingBot]:
    """PingBot logged in, connected, ready, and its commands synced to the fake guild."""
    discord.http.Route.BASE = fake.api_base
    client = PingBot()
    task: asyncio.Task[Any] | None = None
    try:
        await client.login(fake.token)
        # discord.Client never asks for /gateway/bot (only AutoShardedClient does): take it here.
        _, url, _ = await client.http.get_bot_gateway()
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)
        task = asyncio.create_task(client.connect())
        await asyncio.wait_for(client.wait_until_ready(), 10)
        guild = discord.Object(id=int(fake.guild.id))
        client.tree.copy_global_to(guild=guild)
        await client.tree.sync(guild=guild)
        yield client
    finally:
        await client.close()
        if task is not None:
            await asyncio.wait_for(task, 10)


async def ping(fake: FakeDiscord, **options: Any):
    """Send /ping and wait for the bot's visible answer."""
    record = await fake.send_slash_command("ping", options, user=fake.member)
    await fake.wait_for(lambda: fake.messages_for_interaction(record.id), what="/ping answer")
    return record, fake.messages_for_interaction(record.id)[0]


async def test_bot_logs_in_gets_ready_and_syncs_commands_to_the_guild(
    fake: FakeDiscord, bot: PingBot
) -> None:
    assert bot.user is not None and str(bot.user.id) == fake.bot_user.id
    guild = bot.get_guild(int(fake.guild.id))
    assert guild is not None and [c.name for c in guild.text_channels] == ["general", "images"]
    moderator = discord.utils.get(guild.roles, name="Moderator")
    assert moderator is not None and moderator.permissions.manage_messages
    assert moderator.permissions.manage_guild
    # zstd-stream when discord.py finds a zstd module (the speed extra), else zlib-stream.
    asked = discord.utils._ActiveDecompressionContext.COMPRESSION_TYPE
    assert fake.gateway.query_log[0]["compress"] == asked
    assert fake.gateway.identifies[0]["intents"] == discord.Intents.default().value
    synced_guild, synced = fake.command_syncs[-1]
    assert synced_guild == fake.guild.id and [c["name"] for c in synced] == ["ping", "daily"]
    fetched = await bot.tree.fetch_commands(guild=discord.Object(id=int(fake.guild.id)))
    registered = fake.commands_for(fake.guild.id)
    assert [(c.name, str(c.id)) for c in fetched] == [(c["name"], c["id"]) for c in registered]


async def test_wrong_token_is_refused_at_login(fake: FakeDiscord) -> None:
    discord.http.Route.BASE = fake.api_base
    client = discord.Client(intents=discord.Intents.default())
    try:
        with pytest.raises(discord.LoginFailure):
            await client.login("not-the-token")
    finally:
        await client.close()
    assert fake.requests[-1].path == "/users/@me" and fake.requests[-1].status == 401


async def test_slash_command_defers_then_posts_the_file_and_embed(
    fake: FakeDiscord, bot: PingBot
) -> None:
    record, message = await ping(fake, count=2)
    assert bot.counts == [2]
    assert [c.type for c in record.callbacks] == [5] and not record.callbacks[0].ephemeral
    assert message.content == "" and not message.ephemeral
    [attachment] = message.attachments
    assert (attachment.filename, attachment.content_type, attachment.data) == (
        "pong.png",
        "image/png",
        PNG,
    )
    [embed] = message.payload()["embeds"]
    assert embed["title"] == "pong x2" and embed["image"]["url"] == attachment.url
    assert message.custom_ids == ["ping:again"]
    # The file is served back at its url, like Discord's CDN.
    async with aiohttp.ClientSession() as session, session.get(attachment.url) as response:
        assert await response.read() == PNG


async def test_button_click_reaches_the_persistent_view(fake: FakeDiscord, bot: PingBot) -> None:
    _, message = await ping(fake)
    click = await fake.click_button(message, "ping:again", fake.moderator)
    await fake.wait_for(lambda: click.acked, what="button callback")
    plain = await fake.click_button(message, "ping:again", fake.member.id)
    await fake.wait_for(lambda: plain.acked, what="second button callback")
    # The moderator's Manage Messages reaches the bot through the member's permissions.
    assert bot.clicks == [(int(fake.moderator.id), True), (int(fake.member.id), False)]
    [callback] = click.callbacks
    assert (callback.type, callback.data["content"], callback.ephemeral) == (4, "clicked", True)
    with pytest.raises(ValueError, match="no component"):
        await fake.click_button(message, "ping:missing", fake.moderator)


async def test_rate_limited_followup_is_retried_and_arrives(
    fake: FakeDiscord, bot: PingBot
) -> None:
    fake.rate_limit("/webhooks/", times=1, method="POST", retry_after=0.05)
    _, message = await ping(fake)
    assert [r.status for r in fake.requests_to("/webhooks/", "POST")] == [429, 200]
    assert message.attachments[0].data == PNG


async def test_oversized_messages_are_refused_with_discord_error_shapes(
    fake: FakeDiscord, bot: PingBot
) -> None:
    channel = bot.get_channel(int(fake.channel.id))
    assert isinstance(channel, discord.TextChannel)
    with pytest.raises(discord.HTTPException) as too_long:
        await channel.send("x" * 2001)
    assert (too_long.value.status, too_long.value.code) == (400, 50035)
    assert "In content: Must be 2000 or fewer in length." in str(too_long.value)
    with pytest.raises(discord.HTTPException) as long_title:
        await channel.send(embed=discord.Embed(title="t" * 257))
    assert "In embeds.0.title: Must be 256 or fewer in length." in str(long_title.value)
    big = discord.File(io.BytesIO(b"\0" * (fake.upload_limit + 1)), filename="big.png")
    with pytest.raises(discord.HTTPException) as too_big:
        await channel.send(file=big)
    assert (too_big.value.status, too_big.value.code) == (413, 40005)
    assert fake.channel_messages == []
    sent = await channel.send("x" * 2000)
    assert fake.channel_messages[-1].id == str(sent.id)


async def test_late_acknowledgement_is_unknown_interaction(fake: FakeDiscord, bot: PingBot) -> None:
    fake.ack_deadline = 0.0
    record = await fake.send_slash_command("ping", {})
    await fake.wait_for(lambda: bot.errors, what="the bot's error")
    assert isinstance(bot.errors[0], discord.NotFound) and bot.errors[0].code == 10062
    assert not record.acked and fake.messages_for_interaction(record.id) == []


async def test_second_acknowledgement_is_refused(fake: FakeDiscord, bot: PingBot) -> None:
    record, _ = await ping(fake)
    url = f"{fake.api_base}/interactions/{record.id}/{record.token}/callback"
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json={"type": 4, "data": {"content": "again"}}) as response:
            assert response.status == 400
            body = await response.json()
    assert body == {"code": 40060, "message": "Interaction has already been acknowledged."}


async def test_expired_interaction_token_cannot_follow_up(fake: FakeDiscord, bot: PingBot) -> None:
    fake.token_lifetime = 0.0
    record = await fake.send_slash_command("ping", {})
    await fake.wait_for(lambda: bot.errors, what="the bot's error")
    assert record.callbacks[0].type == 5
    assert isinstance(bot.errors[0], discord.HTTPException) and bot.errors[0].code == 50027


async def test_dropped_gateway_resumes_and_replays_missed_events(
    fake: FakeDiscord, bot: PingBot
) -> None:
    await fake.disconnect(4000)
    # Sent while the bot is away: Discord replays it after RESUME.
    record = await fake.send_slash_command("ping", {"count": 3})
    await fake.wait_for(lambda: fake.messages_for_interaction(record.id), what="replayed /ping")
    assert fake.gateway.resumes == 1 and len(fake.gateway.identifies) == 1
    assert bot.counts == [3]


async def test_subcommand_ephemeral_reply_with_file_and_edited_defer(
    fake: FakeDiscord, bot: PingBot
) -> None:
    record = await fake.send_slash_command("daily set", {"time": "09:30"}, user=fake.moderator)
    await fake.wait_for(lambda: fake.messages_for_interaction(record.id), what="/daily set")
    [reply] = fake.messages_for_interaction(record.id)
    assert (reply.content, reply.ephemeral) == ("daily at 09:30", True)
    assert reply.attachments[0].data == b"time\n09:30"
    assert record.callbacks[0].attachments[0].filename == "daily.csv"

    show = await fake.send_slash_command("daily show", {})
    await fake.wait_for(lambda: fake.messages_for_interaction(show.id), what="/daily show")
    [shown] = fake.messages_for_interaction(show.id)
    assert (shown.content, shown.ephemeral, show.response_type) == ("no daily post", True, 5)
    with pytest.raises(ValueError, match="required"):
        await fake.send_slash_command("daily set", {})


async def test_global_rate_limit_on_channel_post_is_waited_out(
    fake: FakeDiscord, bot: PingBot
) -> None:
    fake.rate_limit("/messages", method="POST", retry_after=0.05, global_=True)
    channel = bot.get_channel(int(fake.channel.id))
    assert isinstance(channel, discord.TextChannel)
    sent = await channel.send("after the wait")
    assert [r.status for r in fake.requests_to("/messages", "POST")] == [429, 200]
    assert fake.channel_messages[-1].id == str(sent.id)


def _row(*custom_ids: str) -> dict[str, Any]:
    buttons = [{"type": 2, "style": 1, "label": "b", "custom_id": c} for c in custom_ids]
    return {"type": 1, "components": buttons}


def _embed(**fields: Any) -> dict[str, Any]:
    return {"title": "t", **fields}


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"embeds": [_embed()] * 11}, {"embeds": "BASE_TYPE_MAX_LENGTH"}),
        (
            {"embeds": [_embed(description="d" * 4000), _embed(description="d" * 2001)]},
            {"embeds": "MAX_EMBED_SIZE_EXCEEDED"},
        ),
        (
            {"embeds": [_embed(fields=[{"name": "n", "value": "v"}] * 26)]},
            {"embeds": {"0": {"fields": "BASE_TYPE_MAX_LENGTH"}}},
        ),
        (
            {"embeds": [_embed(footer={"text": "f" * 2049})]},
            {"embeds": {"0": {"footer": {"text": "BASE_TYPE_MAX_LENGTH"}}}},
        ),
        (
            {"content": "rows", "components": [_row("a")] * 6},
            {"components": "BASE_TYPE_BAD_LENGTH"},
        ),
        (
            {"content": "buttons", "components": [_row(*"abcdef")]},
            {"components": {"0": {"components": "BASE_TYPE_BAD_LENGTH"}}},
        ),
        (
            {"content": "id", "components": [_row("x" * 101)]},
            {"components": {"0": {"components": {"0": {"custom_id": "BASE_TYPE_MAX_LENGTH"}}}}},
        ),
    ],
)
async def test_message_limits_answer_invalid_form_body(
    fake: FakeDiscord, body: dict[str, Any], errors: dict[str, Any]
) -> None:
    status, answer = await _post(fake, f"/channels/{fake.channel.id}/messages", body)
    assert (status, answer["code"], answer["message"]) == (400, 50035, "Invalid Form Body")
    assert _codes(answer["errors"]) == errors
    assert fake.channel_messages == []


def _codes(errors: dict[str, Any]) -> Any:
    """The error tree with each `_errors` list reduced to its code."""
    if "_errors" in errors:
        return errors["_errors"][0]["code"]
    return {key: _codes(value) for key, value in errors.items()}


async def _post(
    fake: FakeDiscord, path: str, body: dict[str, Any], token: str | None = None
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bot {token or fake.token}"}
    async with aiohttp.ClientSession() as session:
        async with session.post(fake.api_base + path, json=body, headers=headers) as response:
            return response.status, await response.json()


async def test_plain_rest_errors_have_discord_shapes(fake: FakeDiscord) -> None:
    channel = f"/channels/{fake.channel.id}/messages"
    assert await _post(fake, channel, {"content": "hi"}, token="wrong") == (
        401,
        {"message": "401: Unauthorized", "code": 0},
    )
    assert await _post(fake, channel, {}) == (
        400,
        {"message": "Cannot send an empty message", "code": 50006},
    )
    assert await _post(fake, "/channels/1/messages", {"content": "hi"}) == (
        404,
        {"message": "Unknown Channel", "code": 10003},
    )


async def test_gateway_speaks_zlib_stream_and_refuses_a_bad_token(fake: FakeDiscord) -> None:
    inflate = zlib.decompressobj()

    async def receive(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
        frame = await ws.receive_bytes()
        assert frame.endswith(b"\x00\x00\xff\xff")  # each message ends in a Z_SYNC_FLUSH
        return json.loads(inflate.decompress(frame))

    url = fake.gateway_url + "?v=10&encoding=json&compress=zlib-stream"
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        hello = await receive(ws)
        assert hello["op"] == 10 and hello["d"]["heartbeat_interval"] > 0
        await ws.send_json({"op": 1, "d": None})
        assert (await receive(ws))["op"] == 11
        await ws.send_json({"op": 2, "d": {"token": "wrong", "intents": 513, "properties": {}}})
        closed = await ws.receive()
    assert (closed.type, closed.data) == (aiohttp.WSMsgType.CLOSE, 4004)
