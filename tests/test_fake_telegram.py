"""The fake Telegram Bot API, proven with the real aiogram 3 bot polling, calling and serving it."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.filters import Command, CommandStart
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    CallbackQuery,
    ChatMemberAdministrator,
    ChatMemberOwner,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    Message,
)
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web
from PIL import Image

from tests.fakes.telegram_bot_api import ManualClock
from tests.fakes.telegram_server import FakeTelegram

TOKEN = "42:TEST"
USER, OTHER, OWNER = 1001, 1002, 1003
GROUP = -1001234567890
ALBUM_SIZES = [(64, 48), (32, 32), (48, 96)]


def png(width: int, height: int, mode: str = "RGB") -> bytes:
    """A real PNG of the given size."""
    buffer = io.BytesIO()
    Image.new(mode, (width, height)).save(buffer, "PNG")
    return buffer.getvalue()


def photo(width: int, height: int, name: str = "image.png") -> BufferedInputFile:
    """An upload aiogram sends as a multipart part."""
    return BufferedInputFile(png(width, height), filename=name)


def keyboard(data: str) -> InlineKeyboardMarkup:
    """One inline button carrying `data`."""
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="Go", callback_data=data)]]
    )


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(TOKEN) as server:
        server.chat(USER)  # chats the bot may write to without an update first
        server.chat(GROUP)
        yield server


def make_bot(fake: FakeTelegram, token: str = TOKEN, timeout: float = 60) -> Bot:
    api = TelegramAPIServer.from_base(fake.base_url)
    return Bot(token, session=AiohttpSession(api=api, timeout=timeout))


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    client = make_bot(fake)
    yield client
    await client.session.close()


def demo_router() -> Router:
    """A throwaway bot: /start replies, /album posts an album and a photo, a button answers."""
    router = Router()

    @router.message(CommandStart())
    async def start(message: Message) -> None:
        await message.answer("Hello! Send /generate to get pictures.")

    @router.message(Command("album"))
    async def album(message: Message) -> None:
        media = [
            InputMediaPhoto(
                media=photo(w, h, f"{n}.png"), caption="A foggy harbour" if n == 0 else None
            )
            for n, (w, h) in enumerate(ALBUM_SIZES)
        ]
        await message.answer_media_group(media)
        await message.answer_photo(
            photo(80, 60, "cover.png"), caption="Batch 7", reply_markup=keyboard("again:7")
        )

    @router.callback_query(F.data.startswith("again:"))
    async def again(query: CallbackQuery) -> None:
        await query.answer("Queued")
        assert isinstance(query.message, Message)
        await query.message.answer(f"Queued batch {query.data.split(':')[1]} again")

    return router


@contextlib.asynccontextmanager
async def polling(fake: FakeTelegram, bot: Bot, router: Router) -> AsyncIterator[Dispatcher]:
    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    task = asyncio.create_task(
        dispatcher.start_polling(bot, handle_signals=False, polling_timeout=1)
    )
    await fake.wait_for(lambda: any(c.method == "getUpdates" for c in fake.requests))
    try:
        yield dispatcher
    finally:
        await dispatcher.stop_polling()
        await task


async def test_real_aiogram_polls_replies_posts_albums_and_answers_buttons(
    fake: FakeTelegram, bot: Bot
) -> None:
    async with polling(fake, bot, demo_router()):
        fake.send_command(USER, USER, "/start")
        assert await fake.wait_for(lambda: fake.texts(USER)) == [
            "Hello! Send /generate to get pictures."
        ]

        fake.send_command(GROUP, USER, "/album")
        await fake.wait_for(lambda: len([r for r in fake.sent if r.chat_id == GROUP]) == 2)
        album, cover = [r for r in fake.sent if r.chat_id == GROUP]
        assert album.method == "sendMediaGroup"
        assert [(f.width, f.height) for f in album.files] == ALBUM_SIZES  # decoded from the bytes
        assert [f.filename for f in album.files] == ["0.png", "1.png", "2.png"]
        assert [m.caption for m in album.media] == ["A foggy harbour", None, None]
        assert len({m["media_group_id"] for m in album.messages}) == 1
        assert cover.method == "sendPhoto" and cover.caption == "Batch 7"
        assert (cover.files[0].width, cover.files[0].height) == (80, 60)
        assert (
            cover.messages[0]["from"]["id"] == 42
            and cover.messages[0]["chat"]["type"] == "supergroup"
        )

        fake.press_button(cover, "again:7", OTHER)
        assert await fake.wait_for(lambda: fake.texts(GROUP)) == ["Queued batch 7 again"]
        assert [a["text"] for a in fake.callback_answers.values()] == ["Queued"]


async def test_long_poll_returns_when_an_update_arrives_and_offset_confirms(
    fake: FakeTelegram, bot: Bot
) -> None:
    waiting = asyncio.create_task(bot.get_updates(timeout=30))
    await fake.wait_for(lambda: any(c.method == "getUpdates" for c in fake.requests))
    update = fake.send_command(GROUP, USER, "/generate 4 512x512 a foggy harbour")
    (received,) = await asyncio.wait_for(waiting, 10)  # a guard, long before the 30 s poll ends
    assert received.update_id == update["update_id"]
    assert received.message.text == "/generate 4 512x512 a foggy harbour"
    assert (
        received.message.entities[0].type == "bot_command"
        and received.message.entities[0].length == 9
    )
    assert received.message.from_user.id == USER and received.message.chat.id == GROUP

    assert await bot.get_updates(offset=received.update_id + 1, timeout=0) == []
    assert fake.updates == []


async def test_allowed_updates_filters_what_get_updates_returns(
    fake: FakeTelegram, bot: Bot
) -> None:
    sent = await bot.send_message(USER, "Pick", reply_markup=keyboard("x"))
    fake.press_button(sent.model_dump(by_alias=True), "x", USER)
    message = fake.send_text(USER, USER, "hello")
    updates = await bot.get_updates(allowed_updates=["message"], timeout=0)
    assert [u.update_id for u in updates] == [message["update_id"]]
    assert len(await bot.get_updates(allowed_updates=[], timeout=0)) == 2


async def test_429_has_the_real_shape_and_a_retry_after_the_delay_succeeds(
    fake: FakeTelegram, bot: Bot
) -> None:
    fake.fail_next("sendMessage", "429", retry_after=3)
    async with aiohttp.ClientSession() as session:
        url = f"{fake.base_url}/bot{TOKEN}/sendMessage"
        async with session.post(url, data={"chat_id": str(USER), "text": "hi"}) as resp:
            assert resp.status == 429 and resp.headers["Retry-After"] == "3"
            assert await resp.json() == {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 3",
                "parameters": {"retry_after": 3},
            }
    with pytest.raises(TelegramRetryAfter) as early:  # retrying too soon is refused again
        await bot.send_message(USER, "hi")
    assert 1 <= early.value.retry_after <= 3
    fake.advance(early.value.retry_after)
    message = await bot.send_message(USER, "hi")
    assert message.text == "hi" and fake.texts(USER) == ["hi"]
    assert fake.too_many_requests == 2


async def test_group_and_global_rate_limits(fake: FakeTelegram, bot: Bot) -> None:
    fake.freeze_clock()
    for n in range(20):
        await bot.send_message(GROUP, f"post {n}")
    with pytest.raises(TelegramRetryAfter) as limited:
        await bot.send_message(GROUP, "one too many")
    assert limited.value.retry_after == 60
    fake.advance(60)
    await bot.send_message(GROUP, "after a minute")
    assert fake.texts(GROUP)[-1] == "after a minute" and len(fake.texts(GROUP)) == 21

    fake.advance(1)
    for chat_id in range(2000, 2030):
        fake.chat(chat_id)
        await bot.send_message(chat_id, "hi")
    with pytest.raises(TelegramRetryAfter) as limited:
        await bot.send_message(USER, "the 31st in a second")
    assert limited.value.retry_after == 1
    assert fake.too_many_requests == 2

    fake.rate_limits = False
    await bot.send_message(USER, "unlimited")


@pytest.mark.parametrize("start", [0.0, 101.8933419626485, 987654.321])
async def test_rate_windows_end_exactly_on_an_injected_clock(start: float) -> None:
    # 101.89...: a monotonic reading where (t0 + 60) - 60 rounds below t0 in floats.
    clock = ManualClock(start)
    async with FakeTelegram(TOKEN, clock=clock) as fake:
        fake.chat(GROUP)
        bot = make_bot(fake)
        try:
            for n in range(20):
                await bot.send_message(GROUP, f"post {n}")
            with pytest.raises(TelegramRetryAfter) as limited:
                await bot.send_message(GROUP, "one too many")
            assert limited.value.retry_after == 60
            clock.advance(59)
            with pytest.raises(TelegramRetryAfter) as limited:
                await bot.send_message(GROUP, "still too soon")
            assert limited.value.retry_after == 1
            clock.advance(1)
            await bot.send_message(GROUP, "after exactly a minute")
        finally:
            await bot.session.close()
    assert fake.texts(GROUP)[-1] == "after exactly a minute"


async def test_caption_and_text_limits_reach_aiogram_as_bad_request(
    fake: FakeTelegram, bot: Bot
) -> None:
    with pytest.raises(TelegramBadRequest, match="Bad Request: message caption is too long"):
        await bot.send_photo(GROUP, photo(10, 10), caption="x" * 1025)
    with pytest.raises(TelegramBadRequest, match="Bad Request: message is too long"):
        await bot.send_message(USER, "y" * 4097)
    assert fake.sent == []
    await bot.send_photo(
        GROUP, photo(10, 10), caption="<b>" + "x" * 1024 + "</b>", parse_mode="HTML"
    )
    assert fake.sent[0].caption == "x" * 1024  # markup is not counted, as on Telegram
    with pytest.raises(TelegramBadRequest, match='Unsupported start tag "blink"'):
        await bot.send_message(USER, "<blink>hi</blink>", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="Character '.' is reserved"):
        await bot.send_message(USER, "Done.", parse_mode="MarkdownV2")
    with pytest.raises(TelegramBadRequest, match="Bad Request: BUTTON_DATA_INVALID"):
        await bot.send_message(USER, "pick", reply_markup=keyboard("d" * 65))


async def test_media_group_rules(fake: FakeTelegram, bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="too many messages to send as an album"):
        await bot.send_media_group(GROUP, [InputMediaPhoto(media=photo(8, 8)) for _ in range(11)])
    with pytest.raises(TelegramBadRequest, match="message caption is too long"):
        await bot.send_media_group(
            GROUP, [InputMediaPhoto(media=photo(8, 8), caption="c" * 1025)] * 2
        )
    wide = InputMediaPhoto(media=photo(2100, 100))
    with pytest.raises(
        TelegramBadRequest, match='failed to send message #2 with the error message "PHOTO_INVALID'
    ):
        await bot.send_media_group(GROUP, [InputMediaPhoto(media=photo(8, 8)), wide])
    assert fake.sent == []
    (single,) = await bot.send_media_group(
        GROUP, [InputMediaPhoto(media=photo(8, 8), caption="one")]
    )
    assert single.media_group_id is None and single.caption == "one"  # one item: a plain photo


async def test_photo_dimensions_and_documents(fake: FakeTelegram, bot: Bot) -> None:
    tall = BufferedInputFile(png(9001, 1000, mode="1"), "tall.png")
    with pytest.raises(TelegramBadRequest, match="Bad Request: PHOTO_INVALID_DIMENSIONS"):
        await bot.send_photo(USER, tall)
    with pytest.raises(TelegramBadRequest, match="Bad Request: IMAGE_PROCESS_FAILED"):
        await bot.send_photo(USER, BufferedInputFile(b"not an image", "x.png"))
    message = await bot.send_document(USER, BufferedInputFile(b"title,tags\n", "prompts.csv"))
    assert message.document.file_name == "prompts.csv" and message.document.mime_type == "text/csv"
    (record,) = fake.sent
    assert record.files[0].data == b"title,tags\n" and record.files[0].width is None
    file = await bot.get_file(message.document.file_id)
    downloaded = await bot.download(file)
    assert downloaded is not None and downloaded.read() == b"title,tags\n"


async def test_edit_delete_and_not_modified(fake: FakeTelegram, bot: Bot) -> None:
    sent = await bot.send_message(USER, "Rendering 0/4", reply_markup=keyboard("cancel:1"))
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text("Rendering 0/4", chat_id=USER, message_id=sent.message_id,
                                    reply_markup=keyboard("cancel:1"))  # fmt: skip
    await bot.edit_message_text("Rendering 2/4", chat_id=USER, message_id=sent.message_id)
    shown = fake.message(USER, sent.message_id)
    assert shown is not None and shown["text"] == "Rendering 2/4" and "reply_markup" not in shown
    with pytest.raises(ValueError, match="no button"):  # the keyboard went with the edit
        fake.press_button(shown, "cancel:1", USER)
    await bot.send_chat_action(USER, "upload_photo")
    assert fake.chat_actions == [(USER, "upload_photo")]
    assert await bot.delete_message(USER, sent.message_id) is True
    assert fake.message(USER, sent.message_id) is None
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(USER, sent.message_id)


async def test_commands_admins_and_chats(fake: FakeTelegram, bot: Bot) -> None:
    commands = [BotCommand(command="generate", description="Invent and render images")]
    assert await bot.set_my_commands(commands) is True
    assert list(fake.commands.values()) == [
        [{"command": "generate", "description": "Invent and render images"}]
    ]
    assert [(c.command, c.description) for c in await bot.get_my_commands()] == [
        ("generate", "Invent and render images")
    ]
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Generate!", description="x")])

    fake.set_admins(GROUP, [USER], owner=OWNER)
    owner, admin = await bot.get_chat_administrators(GROUP)
    assert isinstance(owner, ChatMemberOwner) and owner.user.id == OWNER
    assert isinstance(admin, ChatMemberAdministrator) and admin.user.id == USER
    fake.user(OTHER)
    assert (await bot.get_chat_member(GROUP, OTHER)).status == "member"
    with pytest.raises(TelegramBadRequest, match="there are no administrators in the private chat"):
        await bot.get_chat_administrators(USER)
    assert (await bot.get_chat(GROUP)).type == "supergroup"
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(555, "nobody started me")


async def test_unknown_token_and_method(fake: FakeTelegram) -> None:
    stranger = make_bot(fake, token="43:WRONG")
    with pytest.raises(TelegramUnauthorizedError):
        await stranger.get_me()
    await stranger.session.close()
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{fake.base_url}/bot{TOKEN}/sendHologram") as resp:
            assert resp.status == 404
            body = await resp.json()
    assert (
        body["ok"] is False
        and body["error_code"] == 404
        and body["description"].startswith("Not Found")
    )


async def test_injected_500_junk_and_hang(fake: FakeTelegram) -> None:
    impatient = make_bot(fake, timeout=0.3)
    fake.fail_next("getMe", "500")
    fake.fail_next("getMe", "malformed")
    fake.fail_next("getMe", "hang")
    with pytest.raises(TelegramServerError):
        await impatient.get_me()
    with pytest.raises(ClientDecodeError):
        await impatient.get_me()
    with pytest.raises(TelegramNetworkError):
        await impatient.get_me()
    assert (await impatient.get_me()).username == "imagebot_test_bot"
    await impatient.session.close()


async def test_webhook_delivery_to_aiogram_with_secret(fake: FakeTelegram, bot: Bot) -> None:
    router = Router()

    @router.message(CommandStart())
    async def start(message: Message) -> object:
        return message.answer("Hello from the webhook reply")  # a method in the HTTP answer

    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    app = web.Application()
    SimpleRequestHandler(dispatcher, bot, secret_token="s3cret-token").register(app, path="/hook")
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        url = f"http://127.0.0.1:{site.port}/hook"
        await bot.set_webhook(url, secret_token="s3cret-token")
        assert (await bot.get_webhook_info()).url == url
        with pytest.raises(TelegramConflictError):
            await bot.get_updates()
        update = fake.send_command(USER, USER, "/start")
        assert await fake.deliver_via_webhook(update, secret="guess") == 401
        assert fake.sent == []
        assert await fake.deliver_via_webhook(update) == 200
        assert fake.texts(USER) == ["Hello from the webhook reply"] and fake.updates == []
        await bot.delete_webhook()
        assert await bot.get_updates(timeout=0) == []
    finally:
        await runner.cleanup()
