"""The real imagebot Discord bot (discord.py) against the loopback fake Discord, end to end.

Offline settings: the templates prompt source and the local provider, archiving in tmp_path.
"""

from __future__ import annotations

import asyncio
import csv
import io
from typing import Any

import pytest

from imagebot.commands.catalog import COMMANDS
from tests.discord_harness import (
    Running,
    answers,
    offline_settings,
    posted_batch,
    start_bot,
    stop_bot,
)
from tests.fakes.discord_gateway import GUILDS
from tests.fakes.discord_server import FakeDiscord
from tests.recording_port import install_stub


async def test_commands_are_synced_once_to_the_configured_guild(
    fake: FakeDiscord, bot: Running, tmp_path: Any
) -> None:
    synced = fake.commands_for(fake.guild.id)
    # The declared commands, with the same descriptions Telegram and /help show.
    assert [(c["name"], c["description"]) for c in synced] == [
        (command.name, command.description) for command in COMMANDS
    ]
    groups = {c["name"]: [o["name"] for o in c["options"]] for c in synced if c["name"] in
              ("daily", "settings")}  # fmt: skip
    assert groups == {"daily": ["set", "off", "show"], "settings": ["show", "set", "reset"]}
    generate = synced[0]
    options = {o["name"]: o for o in generate["options"]}
    assert options["size"]["autocomplete"] and options["count"]["max_value"] == 10
    choices = [c["value"] for c in options["provider"]["choices"]]
    assert choices == bot.ctx.settings.configured_providers() and "local" in choices
    assert all(o["description"] for o in generate["options"])
    assert bot.adapter.bot.synced is True and len(fake.command_syncs) == 1
    # A second start with the same commands does not sync again.
    await bot.adapter.stop()
    again = await start_bot(offline_settings(fake, tmp_path))
    try:
        assert again.adapter.bot.synced is False and len(fake.command_syncs) == 1
    finally:
        await stop_bot(again)


async def test_the_bot_asks_the_gateway_for_the_guilds_intent_only(
    fake: FakeDiscord, bot: Running
) -> None:
    # No privileged intent to switch on in the portal, and no message events echoing every
    # defer, edit and post back to the bot.
    assert fake.gateway.identifies[-1]["intents"] == GUILDS
    record = await fake.send_slash_command("generate", {"count": 1, "size": "64x64"})
    await posted_batch(fake, record, "the batch")
    assert "MESSAGE_CREATE" not in {m["t"] for m in fake.gateway.last_session.sent}


async def test_without_guild_ids_commands_are_synced_globally(
    fake: FakeDiscord, tmp_path: Any
) -> None:
    settings = offline_settings(fake, tmp_path, DISCORD_GUILD_IDS="")
    running = await start_bot(settings)
    try:
        assert "generate" in [c["name"] for c in fake.commands_for()]
        assert fake.commands_for(fake.guild.id) == []
    finally:
        await stop_bot(running)


async def test_generate_defers_then_posts_images_embed_and_buttons(
    fake: FakeDiscord, bot: Running
) -> None:
    record = await fake.send_slash_command("generate", {"count": 2, "size": "256x256"})
    post = await posted_batch(fake, record, "the batch")
    assert record.callbacks[0].type == 5 and not record.callbacks[0].ephemeral
    assert len(post.attachments) == 2 and not post.ephemeral
    [embed] = post.payload()["embeds"]
    [batch] = list(bot.ctx.services.index.db.query("select * from batches"))
    assert embed["title"] == batch["title"]
    assert "#" in embed["description"] and "local" in embed["footer"]["text"]
    actions = [f"ib:{a}:{batch['id']}" for a in ("reroll", "again", "delete")]
    upscales = [f"ib:upscale:{batch['id']}:{n}" for n in range(1, len(post.attachments) + 1)]
    assert post.custom_ids == actions + upscales
    await fake.wait_for(lambda: [j["status"] for j in bot.jobs()] == ["done"], what="job done")


async def test_bad_size_gets_one_ephemeral_message_and_nothing_is_queued(
    fake: FakeDiscord, bot: Running
) -> None:
    record = await fake.send_slash_command("generate", {"size": "99999x1"})
    [reply] = await answers(fake, record, "the refusal")
    assert reply.ephemeral and record.callbacks[0].type == 4
    assert "99999x1" in reply.content or "size" in reply.content.lower()
    assert bot.jobs() == []


async def test_export_for_moderators_and_refused_for_members(
    fake: FakeDiscord, bot: Running
) -> None:
    mod = await fake.send_slash_command("export", {}, user=fake.moderator)
    [reply] = await answers(fake, mod, "the export")
    [attachment] = reply.attachments
    assert attachment.filename == "export.csv"
    header = next(csv.reader(io.StringIO(attachment.data.decode("utf-8"))))
    assert header[:4] == ["title", "description", "metatags", "prompt"]
    member = await fake.send_slash_command("export", {}, user=fake.member)
    [refusal] = await answers(fake, member, "the refusal")
    assert refusal.ephemeral and not refusal.attachments
    assert "moderator" in refusal.content.lower()


async def test_reroll_button_posts_a_new_batch(fake: FakeDiscord, bot: Running) -> None:
    record = await fake.send_slash_command("generate", {"count": 1, "size": "256x256"})
    first = await posted_batch(fake, record, "the first batch")
    click = await fake.click_button(first, first.custom_ids[0])
    second = await posted_batch(fake, click, "the re-rolled batch")
    assert second.id != first.id and len(second.attachments) == 1
    batches = list(bot.ctx.services.index.db.query("select * from batches"))
    assert len(batches) == 2 and second.custom_ids[0] == f"ib:reroll:{batches[1]['id']}"


async def test_delete_button_removes_the_post(fake: FakeDiscord, bot: Running) -> None:
    record = await fake.send_slash_command("generate", {"count": 1, "size": "256x256"})
    post = await posted_batch(fake, record, "the batch")
    click = await fake.click_button(post, post.custom_ids[2], fake.member)
    await fake.wait_for(lambda: fake.messages[post.id].deleted, what="the deletion")
    assert [c.type for c in click.callbacks] == [6]  # acknowledged silently, nothing new posted
    assert not click.followup_ids


async def test_rate_limited_followup_still_arrives(fake: FakeDiscord, bot: Running) -> None:
    fake.rate_limit("/webhooks/", times=1, method="POST", retry_after=0.05)
    record = await fake.send_slash_command("generate", {"count": 1, "size": "256x256"})
    await posted_batch(fake, record, "the batch after a 429")
    statuses = [r.status for r in fake.requests_to("/webhooks/", "POST")]
    assert statuses[0] == 429 and 200 in statuses
    await fake.wait_for(lambda: [j["status"] for j in bot.jobs()] == ["done"], what="job done")


async def test_images_are_shrunk_to_the_stated_upload_limit(tmp_path: Any) -> None:
    limit = 16 * 1024  # the stated limit, below two 1024x1024 PNGs of any role (even flat art)
    async with FakeDiscord(upload_limit=limit) as small:
        running = await start_bot(offline_settings(small, tmp_path))
        try:
            record = await small.send_slash_command("generate", {"count": 2, "size": "1024x1024"})
            post = await posted_batch(small, record, "the shrunk batch")
        finally:
            await stop_bot(running)
    [folder] = [p for p in (tmp_path / "out").iterdir() if p.is_dir() and (p / "1.png").exists()]
    originals = [(folder / f"{n}.png").stat().st_size for n in (1, 2)]
    assert sum(originals) > limit  # the archive keeps the full-size PNGs
    assert [a.filename for a in post.attachments] == ["1.jpg", "2.jpg"]
    assert sum(len(a.data) for a in post.attachments) <= limit


async def test_buttons_and_accepted_jobs_survive_a_restart(
    fake: FakeDiscord, tmp_path: Any
) -> None:
    settings = offline_settings(fake, tmp_path)
    first = await start_bot(settings)
    try:
        record = await fake.send_slash_command("generate", {"count": 1, "size": "256x256"})
        post = await posted_batch(fake, record, "the batch before the restart")
    finally:
        await stop_bot(first)
    # Accepted by a bot whose workers never ran it (killed right after the acknowledgement).
    idle = await start_bot(settings, work=False)
    try:
        waiting = await fake.send_slash_command("generate", {"count": 1, "size": "256x256"})
        await fake.wait_for(lambda: idle.jobs() and waiting.acked, what="accepted job")
    finally:
        await stop_bot(idle)
    assert not any(m.attachments for m in fake.messages_for_interaction(waiting.id))
    second = await start_bot(settings)
    try:
        # The resumed job answers on its interaction's followup webhook (token still valid).
        await posted_batch(fake, waiting, "the resumed batch")
        # A button posted by the first process still works.
        click = await fake.click_button(post, post.custom_ids[0])
        await posted_batch(fake, click, "the re-roll after the restart")
    finally:
        await stop_bot(second)


async def test_help_and_providers_answer_privately(fake: FakeDiscord, bot: Running) -> None:
    help_record = await fake.send_slash_command("help", {})
    [usage] = await answers(fake, help_record, "/help")
    assert usage.ephemeral and "/generate count:4 size:512x512" in usage.content
    providers = await fake.send_slash_command("providers", {})
    [listing] = await answers(fake, providers, "/providers")
    assert providers.callbacks[0].type == 5 and providers.callbacks[0].ephemeral
    assert listing.ephemeral and "local" in listing.content


async def test_a_waiting_user_sees_their_queue_place(
    fake: FakeDiscord, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    controls = install_stub(monkeypatch)  # renders wait for the gate: no busy-work painting
    controls.gate = asyncio.Event()
    settings = offline_settings(fake, tmp_path, IMAGEBOT_PROVIDER_CONCURRENCY="1")
    running = await start_bot(settings)
    try:
        busy = await fake.send_slash_command("generate", {"count": 1}, user=fake.moderator)
        await controls.wait_started(1)
        waiting = await fake.send_slash_command(
            "generate", {"count": 1, "size": "64x64"}, user=fake.member
        )

        def queue_edit() -> list[Any]:
            edits = fake.requests_to(f"/{waiting.token}/messages/@original", "PATCH")
            return [e for e in edits if "queue" in str((e.json or {}).get("content", ""))]

        [edit] = await fake.wait_for(queue_edit, timeout=30, what="the queue place")
        assert "number 1 in the queue" in edit.json["content"]
        controls.gate.set()
        await posted_batch(fake, busy, "the first batch")
        await posted_batch(fake, waiting, "the second batch")
    finally:
        await stop_bot(running)
