"""The Discord adapter at its seam: invocations, embed limits, the upload budget, fallbacks."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import discord
import pytest

from imagebot.bot.discord.port import (
    DESCRIPTION_MAX,
    EMBED_MAX,
    TITLE_MAX,
    build_embed,
    embed_parts,
    split_text,
)
from imagebot.bot.discord.uploads import fit_uploads
from imagebot.commands.ports import BatchPost, Button, ButtonId
from tests.discord_harness import Running
from tests.fakes.discord_server import FakeDiscord


def _post(**fields: Any) -> BatchPost:
    base: dict[str, Any] = {
        "batch_id": "abc123",
        "title": "A foggy harbour",
        "description": "Boats at dawn.",
        "tags": ["fog", "harbour at dawn"],
        "provider": "local",
        "model": "local-1",
        "images": [],
        "buttons": [[Button("🎲 Re-roll", ButtonId("reroll", "abc123"))]],
    }
    return BatchPost(**{**base, **fields})


def test_embed_carries_title_description_tags_and_provider() -> None:
    title, description, footer = embed_parts(_post(note="horde was unavailable"))
    assert title == "A foggy harbour"
    assert description.startswith("Boats at dawn.")
    assert "#fog #harbour_at_dawn" in description and "horde was unavailable" in description
    assert footer == "local · local-1"


def test_embed_stays_inside_discord_limits_with_huge_fields() -> None:
    post = _post(
        title="T" * 1000,
        description="d" * 9000,
        tags=[f"tag{i}" for i in range(800)],
        errors=["e" * 500] * 5,
    )
    title, description, footer = embed_parts(post)
    assert len(title) <= TITLE_MAX and len(description) <= DESCRIPTION_MAX
    assert len(title) + len(description) + len(footer) <= EMBED_MAX
    assert description.startswith("ddd") and "#tag0" in description
    assert build_embed(post).to_dict()["title"] == title


def test_long_texts_are_split_into_message_sized_pieces() -> None:
    text = "\n".join(f"line {i} " + "x" * 90 for i in range(60))
    pieces = split_text(text)
    assert len(pieces) > 1 and all(len(p) <= 2000 for p in pieces)
    assert "\n".join(pieces) == text


def _noise_png(path: Path, side: int, seed: int) -> Path:
    import random

    from PIL import Image

    rng = random.Random(seed)
    image = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
    image.save(path, "PNG")
    return path


def test_upload_budget_converts_and_downscales_only_when_needed(tmp_path: Path) -> None:
    from PIL import Image

    images = [_noise_png(tmp_path / f"{n}.png", 512, n) for n in (1, 2)]
    total = sum(p.stat().st_size for p in images)
    as_is = fit_uploads(images, total + 1024 * 1024)
    assert [name for name, _ in as_is] == ["1.png", "2.png"]
    assert [data for _, data in as_is] == [p.read_bytes() for p in images]

    budget = 64 * 1024 + 120 * 1024  # headroom + a budget far below the noisy PNGs
    fitted = fit_uploads(images, budget)
    assert [name for name, _ in fitted] == ["1.jpg", "2.jpg"]
    assert sum(len(data) for _, data in fitted) <= 120 * 1024
    with Image.open(io.BytesIO(fitted[0][1])) as first:
        assert first.format == "JPEG" and first.width < 512
    assert images[0].stat().st_size > 512 * 512  # the archive keeps the original


async def _spy(running: Running) -> list[Any]:
    seen: list[Any] = []
    chat = running.adapter.bot.chat
    original = chat.handle

    async def handle(invocation: Any, port: Any) -> None:
        seen.append(invocation)
        await original(invocation, port)

    chat.handle = handle  # type: ignore[method-assign]
    return seen


async def test_invocation_from_a_real_interaction(fake: FakeDiscord, bot: Running) -> None:  # noqa: F811
    seen = await _spy(bot)
    before = time.time()
    await fake.send_slash_command("help", {}, user=fake.moderator)
    await fake.send_slash_command("generate", {"size": "99999x1", "theme": "fog"})
    await fake.wait_for(lambda: len(seen) == 2, what="two invocations")
    mod, member = seen
    assert (mod.command, mod.is_moderator, member.is_moderator) == ("help", True, False)
    assert member.command == "generate"
    assert member.args == {"size": "99999x1", "theme": "fog"}
    requester = member.requester
    assert (requester.platform, requester.user_id, requester.user_name) == (
        "discord",
        fake.member.user.id,
        "Plain User",
    )
    assert (requester.chat_id, requester.guild_id) == (fake.channel.id, fake.guild.id)
    member_role = next(r.id for r in fake.guild.roles if r.name == "Member")
    assert member.role_ids == (member_role,)
    reply = member.reply
    assert reply["application_id"] == fake.application_id and reply["token"]
    assert reply["channel_id"] == fake.channel.id and reply["user_id"] == fake.member.user.id
    assert before + 14 * 60 < reply["expires_at"] < time.time() + 16 * 60


async def test_expired_token_falls_back_to_a_channel_message_with_mention(
    fake: FakeDiscord,  # noqa: F811
    bot: Running,  # noqa: F811
) -> None:
    reply = {
        "application_id": fake.application_id,
        "token": "expired-token",
        "expires_at": time.time() - 1,
        "channel_id": fake.channel.id,
        "guild_id": fake.guild.id,
        "user_id": fake.member.user.id,
    }
    port = bot.adapter.bot.port_from_reply(reply)
    await port.text("Your request failed for @everyone: the provider timed out")
    [message] = fake.channel_messages
    assert message.content == (
        f"<@{fake.member.user.id}> Your request failed for @everyone: the provider timed out"
    )
    assert message.pings == [f"<@{fake.member.user.id}>"]  # the requester, nobody else
    assert fake.requests_to("/webhooks/") == []


async def test_a_post_that_cannot_be_delivered_raises_for_the_runtime(
    fake: FakeDiscord,  # noqa: F811
    bot: Running,  # noqa: F811
) -> None:
    reply = {"token": "t", "expires_at": 0, "channel_id": "1", "user_id": "2"}
    port = bot.adapter.bot.port_from_reply(reply)
    with pytest.raises(discord.NotFound):
        await port.text("lost?")
    assert fake.channel_messages == []


def test_discord_verb_without_a_token_is_one_config_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from imagebot.bot.cli import main

    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    monkeypatch.delenv("TELEGRAM_TOKEN", raising=False)
    assert main(["discord"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "DISCORD_TOKEN" in line and "Traceback" not in line
    assert main(["run"]) == 2
    assert "DISCORD_TOKEN" in capsys.readouterr().err


async def test_run_bots_serves_discord_until_cancelled(tmp_path: Path) -> None:
    import asyncio

    from imagebot.bot.app import run_bots
    from tests.discord_harness import offline_settings

    async with FakeDiscord() as server:
        settings = offline_settings(server, tmp_path)
        task = asyncio.create_task(run_bots(settings, ["discord"]))
        try:
            await server.wait_until_ready()
            await server.wait_for(lambda: server.commands_for(server.guild.id), what="sync")
            record = await server.send_slash_command("queue", {})
            await server.wait_for(lambda: server.messages_for_interaction(record.id), what="/queue")
            [answer] = server.messages_for_interaction(record.id)
            assert answer.ephemeral and answer.content
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        assert task.cancelled()
