"""`imagebot telegram`: aiogram 3 messages and button presses -> platform-neutral commands."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from imagebot.bot.app import StartupError
from imagebot.bot.settings import DEFAULT_TELEGRAM_API
from imagebot.bot.telegram.port import TelegramContext, TelegramPort
from imagebot.bot.telegram.send import Pacer, Sleep, with_flood_control
from imagebot.commands.catalog import COMMANDS
from imagebot.commands.invocation import Invocation
from imagebot.commands.requester import Requester
from imagebot.providers.base import ConfigError
from imagebot.storage.posts import PostStore

if TYPE_CHECKING:
    from aiogram import Bot, Dispatcher, Router
    from aiogram.filters import CommandObject
    from aiogram.types import CallbackQuery, Message
    from aiohttp import web

    from imagebot.bot.app import BotContext
    from imagebot.bot.settings import Settings

log = logging.getLogger("imagebot.telegram")
ADMINS_TTL = 300.0  # getChatAdministrators per chat at most every 5 minutes
BOT_COMMANDS = {command.name: command.description for command in COMMANDS}


class AdminCache:
    """Who administers each group, asked of Telegram at most every few minutes per chat."""

    def __init__(self, bot: Bot, clock: Callable[[], float] = time.monotonic) -> None:
        self.bot = bot
        self.clock = clock
        self._admins: dict[int, tuple[float, frozenset[int]]] = {}

    async def is_moderator(self, chat_id: int, chat_type: str, user_id: int) -> bool:
        """Private chat: always; a group: whether the user is one of its administrators."""
        if chat_type == "private":
            return True
        cached = self._admins.get(chat_id)
        if cached is None or self.clock() - cached[0] > ADMINS_TTL:
            try:
                members = await self.bot.get_chat_administrators(chat_id)
            except Exception:  # unknown is not admin; try again next time
                log.warning("getChatAdministrators failed for %s", chat_id, exc_info=True)
                return False
            cached = (self.clock(), frozenset(m.user.id for m in members))
            self._admins[chat_id] = cached
        return user_id in cached[1]


def build_router() -> Router:
    """The handlers: every declared command, and the `ib:` buttons under posted batches."""
    from aiogram import F, Router
    from aiogram.filters import Command

    router = Router(name="imagebot")

    @router.message(Command(*BOT_COMMANDS, ignore_case=True))
    async def on_command(message: Message, command: CommandObject, telegram: TelegramBot) -> None:
        await telegram.on_command(message, command.command.lower(), command.args or "")

    @router.callback_query(F.data.startswith("ib:"))
    async def on_button(query: CallbackQuery, telegram: TelegramBot) -> None:
        await telegram.on_button(query)

    return router


def make_bot(settings: Settings) -> Bot:
    """An aiogram Bot on the configured Bot API server (TELEGRAM_API_BASE)."""
    from aiogram import Bot
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer

    if not settings.telegram_token:
        raise ConfigError("TELEGRAM_TOKEN is not set; it is needed to run the Telegram bot")
    base = settings.telegram_api_base.rstrip("/")
    if base == DEFAULT_TELEGRAM_API:
        session = AiohttpSession()
    else:
        session = AiohttpSession(api=TelegramAPIServer.from_base(base))
    return Bot(settings.telegram_token.reveal(), session=session)


class TelegramBot:
    """One running Telegram bot: polling or a webhook, feeding the shared chat commands."""

    def __init__(
        self,
        ctx: BotContext,
        *,
        bot: Bot | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        polling_timeout: int = 10,
        webhook_host: str | None = None,
        webhook_port: int | None = None,
    ) -> None:
        from aiogram import Dispatcher

        settings = ctx.settings
        self.settings = settings
        self.runtime = ctx.runtime
        self.commands = ctx.chat
        self.bot = bot or make_bot(settings)
        self.context = TelegramContext(
            self.bot,
            send_documents=settings.telegram_send_documents,
            sleep=sleep,
            clock=clock,
            pacer=Pacer(clock=clock, sleep=sleep),
            posts=PostStore(ctx.services.index.db, "telegram"),
        )
        self.admins = AdminCache(self.bot, clock)
        self.dispatcher: Dispatcher = Dispatcher(telegram=self)
        self.dispatcher.include_router(build_router())
        self.polling_timeout = polling_timeout
        self.webhook_host = webhook_host or settings.telegram_webhook_host
        self.webhook_port = (
            webhook_port if webhook_port is not None else settings.telegram_webhook_port
        )
        self.webhook_url: str | None = None  # where Telegram posts updates, once listening
        self.listening: tuple[str, int] | None = None  # the webhook server's host and port
        self._task: asyncio.Task | None = None
        self._runner: web.AppRunner | None = None
        ctx.runtime.register_platform("telegram", self.port)

    def port(self, reply: dict[str, Any]) -> TelegramPort:
        """A reply port for a stored address (also how jobs are answered after a restart)."""
        return TelegramPort(self.context, reply)

    # ------------------------------------------------------------------ updates

    async def on_command(self, message: Message, command: str, text: str) -> None:
        """A /command message -> one Invocation of the chat commands."""
        user = message.from_user
        if user is None:  # channel posts and anonymous admins have no user to answer
            return
        chat = message.chat
        reply = {
            "chat_id": chat.id,
            "user_id": user.id,
            "user_name": user.username or user.full_name,
            "message_id": message.message_id,
        }
        invocation = Invocation(
            requester=self._requester(user, chat.id),
            command=command,
            args={"text": text.strip()},
            is_moderator=await self.admins.is_moderator(chat.id, chat.type, user.id),
            reply=reply,
        )
        await self.commands.handle(invocation, self.port(reply))

    async def on_button(self, query: CallbackQuery) -> None:
        """A press on a batch's button -> Invocation(command="button"), and the query answered."""
        from aiogram.types import Message

        message = query.message
        if not isinstance(message, Message):  # too old for Telegram to show it to us
            await query.answer("This post is too old to act on.", show_alert=True)
            return
        user, chat = query.from_user, message.chat
        reply = {
            "chat_id": chat.id,
            "user_id": user.id,
            "user_name": user.username or user.full_name,
            "message_id": message.message_id,
            "post_message_id": message.message_id,
            "post_reply_to": message.reply_to_message.message_id
            if message.reply_to_message
            else None,
            "callback_query_id": query.id,
        }
        port = self.port(reply)
        invocation = Invocation(
            requester=self._requester(user, chat.id),
            command="button",
            args={
                "custom_id": query.data,
                "posted_batch": self.context.posts.batch_on(chat.id, message.message_id),
            },
            is_moderator=await self.admins.is_moderator(chat.id, chat.type, user.id),
            reply={k: v for k, v in reply.items() if k != "callback_query_id"},
        )
        try:
            await self.commands.handle(invocation, port)
        finally:
            await port.answer_callback()  # Telegram shows a spinner until the query is answered

    @staticmethod
    def _requester(user: Any, chat_id: int) -> Requester:
        return Requester(
            platform="telegram",
            user_id=str(user.id),
            user_name=user.username or user.full_name,
            chat_id=str(chat_id),
        )

    # ------------------------------------------------------------------ life cycle

    async def login(self) -> None:
        """Nothing to do before posting: the Bot API takes each call with the token."""

    async def start(self) -> None:
        """Publish the command list, then poll (or listen for the webhook) in the background."""
        from aiogram.types import BotCommand

        commands = [BotCommand(command=c, description=d) for c, d in BOT_COMMANDS.items()]
        await self._first_call(
            lambda: with_flood_control(
                lambda: self.bot.set_my_commands(commands), sleep=self.context.sleep
            )
        )
        if self.settings.telegram_webhook_url:
            await self._start_webhook(self.settings.telegram_webhook_url)
            return
        await self.bot.delete_webhook()  # polling is refused while a webhook is set
        self._task = asyncio.create_task(
            self.dispatcher.start_polling(
                self.bot,
                handle_signals=False,
                close_bot_session=False,
                polling_timeout=self.polling_timeout,
            ),
            name="telegram-polling",
        )

    async def _first_call(self, call: Callable[[], Any]) -> None:
        """The first Bot API call, with the reasons it fails said in one line each."""
        from aiogram.exceptions import TelegramNetworkError, TelegramUnauthorizedError

        try:
            await call()
        except TelegramUnauthorizedError:
            raise ConfigError(
                "TELEGRAM_TOKEN was refused by Telegram (401 Unauthorized): copy the token "
                "again from @BotFather (/token)"
            ) from None
        except TelegramNetworkError as exc:
            base = self.settings.telegram_api_base
            raise StartupError(f"cannot reach the Telegram Bot API at {base}: {exc}") from None

    async def _start_webhook(self, url: str) -> None:
        from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
        from aiohttp import web

        secret = self.settings.telegram_webhook_secret
        token = secret.reveal() if secret else None
        app = web.Application()
        path = urlsplit(url).path or "/"
        SimpleRequestHandler(self.dispatcher, self.bot, secret_token=token).register(app, path)
        setup_application(app, self.dispatcher, bot=self.bot)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.webhook_host, self.webhook_port)
        await site.start()
        port = self._runner.addresses[0][1] if self._runner.addresses else self.webhook_port
        self.webhook_url = url
        self.listening = (self.webhook_host, port)
        await self.bot.set_webhook(
            url,
            secret_token=token,
            allowed_updates=self.dispatcher.resolve_used_update_types(),
        )
        log.info("Telegram webhook listening on %s:%s for %s", self.webhook_host, port, path)

    async def wait(self) -> None:
        """Run until cancelled (polling ends only when stopped)."""
        if self._task is not None:
            await asyncio.shield(self._task)
        else:
            await asyncio.Event().wait()

    async def stop(self) -> None:
        """Stop polling or the webhook server and close the HTTP session."""
        if self._task is not None:
            try:
                await self.dispatcher.stop_polling()
            except RuntimeError:  # polling had not started yet
                self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.bot.session.close()
