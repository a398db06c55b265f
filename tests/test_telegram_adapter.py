"""The Telegram adapter at its seams: captions, pacing, the port and the admin cache."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from PIL import Image

from imagebot.bot.telegram.adapter import AdminCache
from imagebot.bot.telegram.port import TelegramContext, TelegramPort
from imagebot.bot.telegram.send import Pacer, caption_html, cut, hashtag, utf16_len
from imagebot.commands.captions import buttons
from imagebot.commands.ports import BatchPost
from tests.fakes.telegram_server import FakeTelegram
from tests.fakes.telegram_wire import visible_text

TOKEN = "42:TEST"
USER, OTHER = 1001, 1002
GROUP = -1001234567890


class Clock:
    """A clock the test moves; sleeping moves it too."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def post(images: list[Path], **changes: object) -> BatchPost:
    fields: dict = {
        "batch_id": "b1",
        "title": "A foggy harbour",
        "description": "Boats rest in grey water at dawn.",
        "tags": ["foggy harbour", "dawn", "C++ & <b>", "42"],
        "provider": "local",
        "model": "local-1",
        "images": images,
        "buttons": buttons("b1"),
    }
    fields.update(changes)
    return BatchPost(**fields)


def png(path: Path, width: int, height: int, mode: str = "RGB") -> Path:
    Image.new(mode, (width, height)).save(path, "PNG")
    return path


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(TOKEN) as server:
        server.chat(USER)
        server.chat(GROUP)
        yield server


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    client = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(fake.base_url)))
    yield client
    await client.session.close()


def test_hashtags_keep_letters_digits_and_underscores() -> None:
    assert hashtag("foggy harbour") == "#foggy_harbour"
    assert hashtag("C++ & <b>") == "#C_b"
    assert hashtag("Ölbild-Stil") == "#Ölbild_Stil"
    assert hashtag("42") is None and hashtag("  ") is None


def test_caption_is_html_with_bold_title_and_fits_1024_shown_characters() -> None:
    caption = caption_html(post([], description="😀 word " * 400))
    shown = visible_text(caption, "HTML")
    assert caption.startswith("<b>A foggy harbour</b>")
    assert utf16_len(shown) <= 1024
    assert shown.endswith("#foggy_harbour #dawn #C_b\n\nlocal/local-1")
    assert "…" in shown  # the description was cut, not the tags


def test_short_caption_is_whole() -> None:
    shown = visible_text(caption_html(post([])), "HTML")
    assert shown == (
        "A foggy harbour\n\nBoats rest in grey water at dawn.\n\n"
        "#foggy_harbour #dawn #C_b\n\nlocal/local-1"
    )


def test_cut_counts_utf16_units() -> None:
    assert cut("abc", 3) == "abc"
    assert cut("😀😀😀", 5) == "😀😀…" and utf16_len(cut("😀😀😀", 5)) == 5


async def send(pacer: Pacer, chat: int, count: int, *, takes: float = 0.0, clock=None) -> None:
    async with pacer.sending(chat, count):
        if takes and clock is not None:
            clock.now += takes  # the upload took this long


async def test_pacer_keeps_groups_to_20_a_minute_and_everyone_to_30_a_second() -> None:
    clock = Clock()
    pacer = Pacer(per_minute=20, clock=clock, sleep=clock.sleep)
    await send(pacer, GROUP, 10)
    await send(pacer, GROUP, 10)
    await send(pacer, USER, 10)  # private chats have no minute limit; 30 this second
    assert clock.slept == []
    await send(pacer, USER, 1)  # the 31st message this second waits for the next one
    assert clock.slept == [1.0]
    await send(pacer, GROUP, 2)  # the group's minute is full until 60 s after its first send
    assert sum(clock.slept) == 60.0


async def test_pacer_counts_a_send_from_when_it_ended() -> None:
    clock = Clock()
    pacer = Pacer(per_minute=20, clock=clock, sleep=clock.sleep)
    await send(pacer, GROUP, 20, takes=5.0, clock=clock)  # an album upload of 5 s
    await send(pacer, GROUP, 1)
    # Telegram saw the 20 no earlier than when the upload ended: 60 s from then, not from the start.
    assert clock.slept == [60.0]


async def test_progress_edits_at_most_every_two_seconds_and_never_the_same_text(
    fake: FakeTelegram, bot: Bot
) -> None:
    clock = Clock()
    port = TelegramPort(TelegramContext(bot, clock=clock, sleep=clock.sleep), {"chat_id": USER})
    await port.acknowledge()
    (message,) = fake.sent
    assert message.text == "Working on it…" and fake.chat_actions == [(USER, "upload_photo")]
    await port.progress("Queued: you are number 1 in the queue.")  # too soon: kept
    await port.progress("Rendering 1/4 …")  # replaces the kept text
    edits = lambda: [c.params["text"] for c in fake.requests if c.method == "editMessageText"]  # noqa: E731
    await port.settled()
    assert edits() == ["Rendering 1/4 …"]
    assert clock.slept == [2.0]  # shown when the two seconds were up
    await port.progress("Rendering 1/4 …")  # the same text again: no edit
    clock.now += 2.5
    await port.progress("Rendering 2/4 …")  # late enough: at once
    assert edits() == ["Rendering 1/4 …", "Rendering 2/4 …"]
    assert fake.message(USER, message.message_id)["text"] == "Rendering 2/4 …"


async def test_private_text_in_a_group_replies_to_the_users_message(
    fake: FakeTelegram, bot: Bot
) -> None:
    command = fake.send_command(GROUP, USER, "/export")["message"]
    reply = {"chat_id": GROUP, "user_id": USER, "message_id": command["message_id"]}
    port = TelegramPort(TelegramContext(bot), reply)
    await port.text("/export is for moderators only", private=True)
    call = next(c for c in fake.requests if c.method == "sendMessage")
    assert json.loads(call.params["reply_parameters"])["message_id"] == command["message_id"]
    assert fake.texts(GROUP) == ["/export is for moderators only"]


async def test_oversized_photos_go_as_documents_and_the_caption_stays_first(
    fake: FakeTelegram, bot: Bot, tmp_path: Path
) -> None:
    small = png(tmp_path / "1.png", 64, 48)
    tall = png(tmp_path / "2.png", 9001, 1000, mode="1")  # width + height > 10000
    port = TelegramPort(TelegramContext(bot), {"chat_id": USER})
    await port.images(post([small, tall]))
    photo, document, buttons_message = fake.sent
    assert photo.method == "sendPhoto" and photo.caption.startswith("A foggy harbour")
    assert document.method == "sendDocument" and document.caption is None
    assert document.files[0].filename == "2.png"
    assert [b["text"] for b in buttons_message.reply_markup["inline_keyboard"][0]] == [
        "🎲 Re-roll",
        "🔁 Same prompt",
        "🗑 Delete",
    ]


async def test_send_documents_setting_sends_full_size_files_and_errors_show_below(
    fake: FakeTelegram, bot: Bot, tmp_path: Path
) -> None:
    images = [png(tmp_path / f"{n}.png", 32, 32) for n in (1, 2)]
    port = TelegramPort(TelegramContext(bot, send_documents=True), {"chat_id": USER})
    errors = ["1 of 3 images could not be rendered:", "the server is overloaded"]
    await port.images(post(images, errors=errors, note="horde was unavailable"))
    album, below = fake.sent
    assert album.method == "sendMediaGroup" and [m.type for m in album.media] == ["document"] * 2
    assert below.text == "1 of 3 images could not be rendered:\nthe server is overloaded\n" + (
        "horde was unavailable"
    )


async def test_admins_are_asked_once_per_five_minutes(fake: FakeTelegram, bot: Bot) -> None:
    fake.set_admins(GROUP, [USER])
    clock = Clock()
    admins = AdminCache(bot, clock)
    assert await admins.is_moderator(GROUP, "supergroup", USER)
    fake.set_admins(GROUP, [OTHER])
    assert await admins.is_moderator(GROUP, "supergroup", USER)  # cached
    assert not await admins.is_moderator(GROUP, "supergroup", OTHER)
    clock.now += 301
    assert await admins.is_moderator(GROUP, "supergroup", OTHER)
    assert not await admins.is_moderator(GROUP, "supergroup", USER)
    assert await admins.is_moderator(USER, "private", USER)
    asked = [c for c in fake.requests if c.method == "getChatAdministrators"]
    assert len(asked) == 2
