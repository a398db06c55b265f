"""The real aiogram bot polling the loopback fake Bot API, driving the real chat commands."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from PIL import Image

from imagebot.bot.app import build_context
from imagebot.bot.runtime import Runtime
from imagebot.bot.settings import Settings
from imagebot.bot.telegram.adapter import TelegramBot
from imagebot.commands.catalog import COMMANDS
from imagebot.commands.services import Services
from tests.fakes.telegram_server import FakeTelegram
from tests.fakes.telegram_wire import SentRecord

TOKEN = "42:TEST"
USER, OTHER, ADMIN = 1001, 1002, 1003
GROUP = -1001234567890


@dataclass
class Running:
    fake: FakeTelegram
    telegram: TelegramBot
    runtime: Runtime
    services: Services

    def posts(self, chat_id: int) -> list[SentRecord]:
        """What the chat shows of images: photos, albums and documents of images."""
        return [
            r
            for r in self.fake.sent
            if r.chat_id == chat_id and r.method in ("sendPhoto", "sendMediaGroup")
        ]

    def buttons_messages(self, chat_id: int) -> list[SentRecord]:
        return [r for r in self.fake.sent if r.chat_id == chat_id and r.reply_markup]


async def start_bot(fake: FakeTelegram, output: Path, env: dict[str, str] | None = None) -> Running:
    environ = {
        "IMAGEBOT_OUTPUT_DIR": str(output),
        "IMAGEBOT_PROMPT_SOURCE": "templates",
        "IMAGEBOT_PROVIDER": "local",
        "TELEGRAM_TOKEN": TOKEN,
        "TELEGRAM_API_BASE": fake.base_url,
        **(env or {}),
    }
    settings = Settings.from_env(environ=environ, dotenv_path=None)
    ctx = build_context(settings)
    services, runtime = ctx.services, ctx.runtime

    async def fake_sleep(seconds: float) -> None:
        fake.advance(seconds)  # flood waits pass on the fake's clock, not the test's
        await asyncio.sleep(0)

    telegram = TelegramBot(
        ctx,
        sleep=fake_sleep,
        polling_timeout=1,
        webhook_host="127.0.0.1",
        webhook_port=0,
    )
    await runtime.start()
    await telegram.start()
    return Running(fake, telegram, runtime, services)


async def stop_bot(running: Running) -> None:
    await running.telegram.stop()
    await running.runtime.stop()
    await running.services.aclose()


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(TOKEN) as server:
        server.chat(USER)
        server.chat(GROUP)
        server.set_admins(GROUP, [ADMIN])
        yield server


@pytest.fixture
async def running(fake: FakeTelegram, tmp_path: Path) -> AsyncIterator[Running]:
    bot = await start_bot(fake, tmp_path / "output", {"IMAGEBOT_MAX_IMAGES": "12"})
    await fake.wait_for(lambda: any(c.method == "getUpdates" for c in fake.requests))
    yield bot
    await stop_bot(bot)


async def test_start_publishes_the_command_list(running: Running) -> None:
    (published,) = running.fake.commands.values()
    # The declared commands, in their order, with the description /help and Discord show.
    assert [(c["command"], c["description"]) for c in published] == [
        (command.name, command.description) for command in COMMANDS
    ]


async def test_one_image_is_a_captioned_photo_with_buttons_below(running: Running) -> None:
    fake = running.fake
    fake.send_command(USER, USER, "/generate 1 256x256")
    await fake.wait_for(lambda: running.buttons_messages(USER))
    (photo,) = running.posts(USER)
    assert photo.method == "sendPhoto" and photo.parse_mode == "HTML"
    assert (photo.files[0].width, photo.files[0].height) == (256, 256)
    (row,) = running.services.index.db.query("select * from batches")
    assert photo.caption.startswith(row["title"]) and "local/" in photo.caption
    assert (USER, "upload_photo") in fake.chat_actions
    assert "Working on it…" in fake.texts(USER)
    (buttons,) = running.buttons_messages(USER)
    data = [b["callback_data"] for b in buttons.reply_markup["inline_keyboard"][0]]
    assert data == [f"ib:{a}:{row['id']}" for a in ("reroll", "again", "delete")]
    # The progress message is gone once the answer is there.
    progress = next(r for r in fake.sent if r.text == "Working on it…")
    await fake.wait_for(lambda: fake.message(USER, progress.message_id) is None)


async def test_four_images_are_one_album_and_the_theme_is_archived(running: Running) -> None:
    fake = running.fake
    fake.send_command(GROUP, USER, "/generate 4 256x256 a foggy harbour")
    await fake.wait_for(lambda: running.buttons_messages(GROUP))
    (album,) = running.posts(GROUP)
    assert album.method == "sendMediaGroup" and len(album.media) == 4
    assert album.media[0].caption and [m.caption for m in album.media[1:]] == [None] * 3
    assert "#" in album.media[0].caption  # tags as hashtags
    (row,) = running.services.index.db.query("select * from batches")
    info = json.loads((Path(row["folder"]) / "info.json").read_text())
    assert info["theme"] == "a foggy harbour" and len(info["images"]) == 4
    assert info["requested_by"]["platform"] == "telegram"
    assert info["requested_by"]["chat_id"] == str(GROUP)


async def test_twelve_images_are_two_albums_of_ten_and_two(running: Running) -> None:
    fake = running.fake
    fake.send_command(USER, USER, "/generate 12 64x64")
    await fake.wait_for(lambda: running.buttons_messages(USER), timeout=30)
    first, second = running.posts(USER)
    assert [len(first.media), len(second.media)] == [10, 2]
    assert first.media[0].caption and second.media[0].caption is None


@pytest.mark.parametrize("words", ["99 256x256", "4 99999x1"])
async def test_bad_input_gets_one_clear_reply_and_nothing_is_queued(
    running: Running, words: str
) -> None:
    fake = running.fake
    fake.send_command(GROUP, USER, f"/generate {words}")
    (reply,) = await fake.wait_for(lambda: fake.texts(GROUP))
    assert ("count" in reply.lower()) or ("size" in reply.lower())
    # Nothing was queued for it: the user's queue is empty, and nothing was posted.
    fake.send_command(GROUP, USER, "/queue")
    await fake.wait_for(lambda: len(fake.texts(GROUP)) >= 2)
    assert fake.texts(GROUP) == [reply, "You have no request waiting or running."]
    assert running.posts(GROUP) == []
    call = next(c for c in fake.requests if c.params.get("text") == reply)
    command_id = next(iter(fake.messages))[1]  # "private" in a group: a reply to the user
    assert json.loads(call.params["reply_parameters"])["message_id"] == command_id
    assert list(running.services.index.db.query("select * from jobs")) == []


async def test_export_for_admins_only(running: Running) -> None:
    fake = running.fake
    fake.send_command(GROUP, OTHER, "/export")
    (refusal,) = await fake.wait_for(lambda: fake.texts(GROUP))
    assert "moderators" in refusal
    assert not [r for r in fake.sent if r.method == "sendDocument"]

    fake.send_command(GROUP, ADMIN, "/export")
    docs = await fake.wait_for(lambda: [r for r in fake.sent if r.method == "sendDocument"])
    (doc,) = docs
    assert doc.files[0].filename == "export.csv"
    header = next(csv.reader(io.StringIO(doc.files[0].data.decode("utf-8"))))
    assert "title" in header and "folder" in header
    assert doc.caption and "batches" in doc.caption


async def test_reroll_button_posts_a_new_batch(running: Running) -> None:
    fake = running.fake
    fake.send_command(USER, USER, "/generate 2 64x64 a lighthouse")
    (first,) = await fake.wait_for(lambda: running.buttons_messages(USER))
    reroll = first.reply_markup["inline_keyboard"][0][0]["callback_data"]
    assert reroll.startswith("ib:reroll:")
    fake.press_button(first, reroll, USER)
    await fake.wait_for(lambda: len(running.buttons_messages(USER)) == 2)
    assert len(running.posts(USER)) == 2
    assert len(fake.callback_answers) == 1
    rows = list(running.services.index.db.query("select theme from batches"))
    assert [r["theme"] for r in rows] == ["a lighthouse", "a lighthouse"]


async def test_delete_button_removes_the_album_and_refuses_strangers(running: Running) -> None:
    fake = running.fake
    fake.send_command(GROUP, USER, "/generate 2 64x64")
    (post,) = await fake.wait_for(lambda: running.buttons_messages(GROUP))
    (album,) = running.posts(GROUP)
    delete = post.reply_markup["inline_keyboard"][0][2]["callback_data"]
    fake.press_button(post, delete, OTHER)
    (answer,) = await fake.wait_for(lambda: list(fake.callback_answers.values()))
    assert answer["show_alert"] and "only the person" in answer["text"].lower()
    assert fake.message(GROUP, post.message_id) is not None

    fake.press_button(post, delete, USER)
    await fake.wait_for(lambda: fake.message(GROUP, post.message_id) is None)
    assert all(fake.message(GROUP, m["message_id"]) is None for m in album.messages)


async def test_delete_after_a_restart_removes_every_album_message(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    env = {"IMAGEBOT_MAX_IMAGES": "12"}
    first = await start_bot(fake, tmp_path / "output", env)
    fake.send_command(GROUP, USER, "/generate 12 64x64")  # two albums: 10 + 2
    (post,) = await fake.wait_for(lambda: first.buttons_messages(GROUP))
    albums = first.posts(GROUP)
    await stop_bot(first)

    again = await start_bot(fake, tmp_path / "output", env)
    try:
        delete = post.reply_markup["inline_keyboard"][0][2]["callback_data"]
        fake.press_button(post, delete, USER)
        await fake.wait_for(lambda: fake.message(GROUP, post.message_id) is None)
        parts = [m["message_id"] for album in albums for m in album.messages]
        await fake.wait_for(lambda: all(fake.message(GROUP, m) is None for m in parts))
        assert len(parts) == 12
    finally:
        await stop_bot(again)


async def test_flood_control_429_on_the_album_still_delivers_it(running: Running) -> None:
    fake = running.fake
    fake.fail_next("sendMediaGroup", "429", retry_after=5)
    fake.send_command(USER, USER, "/generate 3 64x64")
    await fake.wait_for(lambda: running.buttons_messages(USER))
    (album,) = running.posts(USER)
    assert len(album.media) == 3
    refused = [c for c in fake.requests if c.method == "sendMediaGroup" and c.status == 429]
    assert len(refused) == 1


async def test_webhook_mode_refuses_a_wrong_secret(fake: FakeTelegram, tmp_path: Path) -> None:
    env = {
        "TELEGRAM_WEBHOOK_URL": "http://127.0.0.1:1/telegram/hook",
        "TELEGRAM_WEBHOOK_SECRET": "s3cret-token",
    }
    bot = await start_bot(fake, tmp_path / "output", env)
    try:
        assert bot.telegram.listening is not None
        host, port = bot.telegram.listening
        url = f"http://{host}:{port}/telegram/hook"
        assert fake.webhook["url"] == env["TELEGRAM_WEBHOOK_URL"]
        assert fake.webhook["secret_token"] == "s3cret-token"
        update = fake.send_command(USER, USER, "/help")
        assert await fake.deliver_via_webhook(update, url=url, secret="guess") == 401
        assert fake.texts(USER) == []
        assert await fake.deliver_via_webhook(update, url=url) == 200
        (help_text,) = await fake.wait_for(lambda: fake.texts(USER))
        assert "/generate" in help_text
        assert not any(c.method == "getUpdates" for c in fake.requests)
    finally:
        await stop_bot(bot)


async def test_a_job_is_answered_through_a_port_rebuilt_from_its_address(
    fake: FakeTelegram,
) -> None:
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(fake.base_url)))
    try:
        from imagebot.bot.telegram.port import TelegramContext, TelegramPort

        port = TelegramPort(TelegramContext(bot), {"chat_id": USER, "user_id": USER})
        await port.progress("Rendering 1/4 …")
        await port.text("Sorry, your request failed: the server is down")
        assert fake.texts(USER) == [
            "Rendering 1/4 …",
            "Sorry, your request failed: the server is down",
        ]
    finally:
        await bot.session.close()


async def test_imagebot_telegram_runs_through_the_shared_app(
    fake: FakeTelegram, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from imagebot.bot.app import run_bots

    caplog.set_level(logging.INFO)

    environ = {
        "IMAGEBOT_OUTPUT_DIR": str(tmp_path / "output"),
        "IMAGEBOT_PROMPT_SOURCE": "templates",
        "TELEGRAM_TOKEN": TOKEN,
        "TELEGRAM_API_BASE": fake.base_url,
    }
    settings = Settings.from_env(environ=environ, dotenv_path=None)
    task = asyncio.create_task(run_bots(settings, ["telegram"]))
    try:
        fake.send_command(USER, USER, "/generate 1 64x64")
        await fake.wait_for(lambda: [r for r in fake.sent if r.method == "sendPhoto"])
        assert fake.commands  # the command list was published at start
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert caplog.records  # the bot says what it does ...
    assert TOKEN not in caplog.text  # ... and never shows its token


async def test_a_due_daily_schedule_posts_to_its_group(fake: FakeTelegram, tmp_path: Path) -> None:
    """A schedule set yesterday for a minute ago is posted once when the bot starts."""
    from datetime import UTC, datetime, timedelta

    from imagebot.bot.app import run_bots
    from imagebot.storage.daily import DailyStore
    from imagebot.storage.index import Index

    now = datetime.now(UTC)
    if now.hour == 0 and now.minute < 2:
        pytest.skip("a minute ago is yesterday: the schedule would not be due today")
    environ = {
        "IMAGEBOT_OUTPUT_DIR": str(tmp_path / "output"),
        "TELEGRAM_TOKEN": TOKEN,
        "TELEGRAM_API_BASE": fake.base_url,
    }
    settings = Settings.from_env(environ=environ, dotenv_path=None)
    fake.send_text(GROUP, ADMIN, "hello")  # the fake knows a chat once it has spoken
    index = Index(settings.db_path)
    DailyStore(index.db).upsert(
        {
            "platform": "telegram",
            "chat_id": str(GROUP),
            "time_utc": (now - timedelta(minutes=1)).strftime("%H:%M"),
            "provider": "local",
            "size": "64x64",
            "count": 2,
            "created_by": str(ADMIN),
            "created_at": (now - timedelta(days=1)).isoformat(),
            "last_run_date": (now - timedelta(days=1)).date().isoformat(),
            "reply": {"chat_id": GROUP, "user_id": ADMIN, "message_id": 1},
        }
    )
    index.close()
    task = asyncio.create_task(run_bots(settings, ["telegram"]))
    try:
        await fake.wait_for(
            lambda: [r for r in fake.sent if r.method == "sendMediaGroup" and r.chat_id == GROUP]
        )
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    [album] = [r for r in fake.sent if r.method == "sendMediaGroup"]
    assert len(album.media) == 2 and album.media[0].caption


# ------------------------------------------------------------------ every declared command


async def test_prompts_attaches_prompts_csv(running: Running) -> None:
    fake = running.fake
    fake.send_command(GROUP, USER, "/prompts 3 lighthouses")
    docs = await fake.wait_for(lambda: [r for r in fake.sent if r.method == "sendDocument"])
    (doc,) = docs
    assert doc.files[0].filename == "prompts.csv" and "3 prompt specs" in doc.caption
    rows = list(csv.DictReader(io.StringIO(doc.files[0].data.decode("utf-8"))))
    assert len(rows) == 3 and all(row["prompt"] for row in rows)


async def test_same_prompt_button_renders_the_spec_again(running: Running) -> None:
    fake = running.fake
    fake.send_command(USER, USER, "/generate 1 64x64 owls")
    (first,) = await fake.wait_for(lambda: running.buttons_messages(USER))
    again = first.reply_markup["inline_keyboard"][0][1]["callback_data"]
    assert again.startswith("ib:again:")
    fake.press_button(first, again, USER)
    await fake.wait_for(lambda: len(running.buttons_messages(USER)) == 2)
    titles = [r["title"] for r in running.services.index.db.query("select title from batches")]
    assert len(titles) == 2 and titles[0] == titles[1]


async def test_queue_cancel_help_and_providers(running: Running) -> None:
    fake = running.fake
    for command in ("/queue", "/cancel", "/help", "/providers"):
        fake.send_command(USER, USER, command)
    texts = await fake.wait_for(lambda: fake.texts(USER) if len(fake.texts(USER)) >= 4 else None)
    assert "You have no request waiting or running." in texts
    assert "You have no request to cancel." in texts
    assert any(text.startswith("imagebot invents image prompts") for text in texts)
    assert any("[ok] local" in text for text in texts)
    assert "Working on it…" not in texts  # /providers acknowledges with 'typing…' only
    assert (USER, "typing") in fake.chat_actions


async def test_settings_for_admins_with_spoiler_photos(running: Running) -> None:
    fake = running.fake
    fake.send_command(GROUP, OTHER, "/settings set spoiler on")
    (refusal,) = await fake.wait_for(lambda: fake.texts(GROUP))
    assert "/settings set is for moderators only" in refusal
    fake.send_command(GROUP, ADMIN, "/settings set spoiler on")
    fake.send_command(GROUP, ADMIN, "/settings set size 64x64")
    await fake.wait_for(lambda: len(fake.texts(GROUP)) >= 3)
    assert "This chat's spoiler is now on." in fake.texts(GROUP)
    fake.send_command(GROUP, OTHER, "/settings show")
    shown = await fake.wait_for(
        lambda: [t for t in fake.texts(GROUP) if t.startswith("This chat's settings")]
    )
    assert "• size: 64x64" in shown[0] and "• spoiler: on" in shown[0]

    fake.send_command(GROUP, USER, "/generate 2")
    await fake.wait_for(lambda: running.buttons_messages(GROUP))
    (album,) = running.posts(GROUP)
    [call] = [c for c in fake.requests if c.method == "sendMediaGroup"]
    media = json.loads(call.params["media"])
    assert [item.get("has_spoiler") for item in media] == [True, True]
    assert (album.media[0].file.width, album.media[0].file.height) == (64, 64)

    fake.send_command(GROUP, ADMIN, "/settings reset")
    await fake.wait_for(
        lambda: "All of this chat's settings are back to the bot's default." in fake.texts(GROUP)
    )


async def test_daily_set_show_off(running: Running) -> None:
    fake = running.fake
    fake.send_command(GROUP, ADMIN, "/daily set 09:30 local 64x64 2")
    (answer,) = await fake.wait_for(lambda: fake.texts(GROUP))
    assert answer.startswith("Daily post set: every day at 09:30 UTC: 2 images of 64x64")
    fake.send_command(GROUP, ADMIN, "/daily show")
    fake.send_command(GROUP, ADMIN, "/daily off")
    texts = await fake.wait_for(lambda: fake.texts(GROUP) if len(fake.texts(GROUP)) >= 3 else None)
    assert any(t.startswith("Daily post: every day at 09:30 UTC") for t in texts)
    assert "Daily post turned off for this chat." in texts


async def test_user_text_never_becomes_a_mention(running: Running) -> None:
    fake = running.fake
    fake.send_command(GROUP, USER, "/prompts 2 @everyone_here and @admin_team harbour")
    await fake.wait_for(lambda: [r for r in fake.sent if r.method == "sendDocument"])
    fake.send_command(GROUP, USER, "/generate 1 64x64 @everyone_here harbour")
    await fake.wait_for(lambda: running.buttons_messages(GROUP))
    ours = [m for m in fake.messages.values() if m["from"]["id"] == fake.bot_user["id"]]
    shown = [m.get("text") or m.get("caption") or "" for m in ours]
    assert any("everyone_here" in text for text in shown)  # the words are shown as typed...
    mentions = [m for m in ours if "entities" in m or "caption_entities" in m]
    assert mentions == []  # ...and notify nobody


async def test_a_forged_delete_for_another_batch_deletes_nothing(running: Running) -> None:
    fake = running.fake
    fake.send_command(GROUP, USER, "/generate 1 64x64")
    (victim,) = await fake.wait_for(lambda: running.buttons_messages(GROUP))
    fake.send_command(GROUP, OTHER, "/generate 1 64x64")
    await fake.wait_for(lambda: len(running.buttons_messages(GROUP)) == 2)
    rows = running.services.index.db.query("select id, user_id from batches")
    own = next(row["id"] for row in rows if row["user_id"] == str(OTHER))
    # The attacker's own batch id, on the victim's post: the owner check must see the post.
    fake.press_button(victim, f"ib:delete:{own}", OTHER, forged=True)
    (answer,) = await fake.wait_for(lambda: list(fake.callback_answers.values()))
    assert answer["show_alert"] and "does not belong to this post" in answer["text"]
    assert fake.message(GROUP, victim.message_id) is not None


async def test_a_flooding_member_is_refused_and_the_group_stays_usable(running: Running) -> None:
    fake = running.fake
    for _ in range(6):
        fake.send_command(GROUP, USER, "/generate 1 64x64")
    refusals = await fake.wait_for(
        lambda: [t for t in fake.texts(GROUP) if "requests in the queue" in t] or None
    )
    assert "at most 3" in refusals[0] and "/cancel" in refusals[0]
    fake.send_command(GROUP, OTHER, "/generate 1 64x64")
    await fake.wait_for(
        lambda: (
            len(running.buttons_messages(GROUP)) >= 4
            and {
                r["user_id"] for r in running.services.index.db.query("select user_id from batches")
            }
            == {str(USER), str(OTHER)}
        )
    )
    users = [r["user_id"] for r in running.services.index.db.query("select user_id from jobs")]
    assert users.count(str(USER)) <= 5 and users.count(str(OTHER)) == 1


async def test_u1_posts_image_one_at_twice_its_size_and_archives_it(running: Running) -> None:
    fake = running.fake
    fake.send_command(GROUP, USER, "/generate 2 64x64")
    (post,) = await fake.wait_for(lambda: running.buttons_messages(GROUP))
    rows = post.reply_markup["inline_keyboard"]
    assert [b["text"] for b in rows[1]] == ["U1", "U2"]
    fake.press_button(post, rows[1][0]["callback_data"], USER)
    (doc,) = await fake.wait_for(lambda: [r for r in fake.sent if r.method == "sendDocument"])
    assert doc.files[0].filename == "1-upscaled.png" and "upscaled to 128x128" in doc.caption
    with Image.open(io.BytesIO(doc.files[0].data)) as picture:
        assert picture.size == (128, 128)
    (batch,) = running.services.index.db.query("select folder from batches")
    info = json.loads((Path(batch["folder"]) / "info.json").read_text("utf-8"))
    assert info["upscales"] == [
        {"image": 1, "file": "1-upscaled.png", "width": 128, "height": 128,
         "provider": "local", "upscaler": "local"}
    ]  # fmt: skip
    assert (Path(batch["folder"]) / "1-upscaled.png").read_bytes() == doc.files[0].data
