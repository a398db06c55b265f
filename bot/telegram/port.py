"""The ReplyPort for Telegram: chat action, a throttled progress message, albums, files."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagebot.bot.chat_progress import TrailingEdits
from imagebot.bot.telegram.send import (
    TEXT_MAX,
    Pacer,
    Sleep,
    caption_html,
    chunks,
    cut,
    photo_fits,
    with_flood_control,
)
from imagebot.commands.ports import BatchPost
from imagebot.storage.index import Index
from imagebot.storage.posts import PostStore

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.types import Message

log = logging.getLogger("imagebot.telegram")
WORKING = "Working on it…"
PROGRESS_INTERVAL = 2.0  # Telegram asks bots not to edit one message more than about every 2 s
ALERT_MAX = 200  # answerCallbackQuery's text limit


@dataclass
class TelegramContext:
    """What every Telegram port shares: the bot, the pacer, and which messages form a post."""

    bot: Bot
    send_documents: bool = False
    sleep: Sleep = asyncio.sleep
    clock: Callable[[], float] = time.monotonic
    pacer: Pacer = field(default_factory=Pacer)
    # the album messages above each buttons message, to delete them together
    posts: PostStore = field(default_factory=lambda: PostStore(Index(":memory:").db, "telegram"))


class TelegramPort:
    """Answers one request in one chat; rebuilt from `reply` after a restart."""

    def __init__(self, context: TelegramContext, reply: dict[str, Any]) -> None:
        self.context = context
        self.bot = context.bot
        self.reply = reply
        self.chat_id = int(reply["chat_id"])
        self.callback_id: str | None = reply.get("callback_query_id")
        self.callback_answered = False
        self._progress_id: int | None = None
        self._edits = TrailingEdits(
            self._edit_progress, PROGRESS_INTERVAL, clock=context.clock, sleep=context.sleep
        )

    # ------------------------------------------------------------------ plumbing

    async def _send(self, call: Callable[[], Any], count: int = 1, what: str = "send") -> Any:
        who = self.reply.get("user_id")  # the group's budget is shared fairly between users
        async with self.context.pacer.sending(self.chat_id, count, who):
            return await with_flood_control(call, sleep=self.context.sleep, what=what)

    def _reply_to(self) -> Any:
        from aiogram.types import ReplyParameters

        message_id = self.reply.get("message_id")
        if not message_id or self.reply.get("scheduled"):  # a daily post replies to nothing
            return None
        return ReplyParameters(message_id=int(message_id), allow_sending_without_reply=True)

    async def _drop_progress(self) -> None:
        """The progress message has done its job once the answer is there."""
        self._edits.cancel()
        if self._progress_id is None:
            return
        message_id, self._progress_id = self._progress_id, None
        try:
            await self.bot.delete_message(self.chat_id, message_id)
        except Exception:
            log.debug("could not delete progress message %s", message_id, exc_info=True)

    async def answer_callback(self, text: str | None = None, alert: bool = False) -> bool:
        """Answer the button press this port came from (once); False when there is none."""
        if self.callback_id is None or self.callback_answered:
            return False
        self.callback_answered = True
        try:
            await self.bot.answer_callback_query(self.callback_id, text=text, show_alert=alert)
        except Exception:  # a query older than ~15 s cannot be answered any more
            log.debug("could not answer callback query", exc_info=True)
            return False
        return True

    # ------------------------------------------------------------------ ReplyPort

    async def acknowledge(self, *, private: bool = False) -> None:
        """Show 'sending a photo…' and a progress message that progress() edits; for a private
        answer only 'typing…' (a progress message would stay in the group)."""
        await self.answer_callback()
        try:
            await self.bot.send_chat_action(self.chat_id, "typing" if private else "upload_photo")
        except Exception:
            log.debug("chat action failed", exc_info=True)
        if self._progress_id is None and not private:
            await self._new_progress(WORKING)

    async def _new_progress(self, text: str) -> None:
        message: Message = await self._send(
            lambda: self.bot.send_message(self.chat_id, text, reply_parameters=self._reply_to()),
            what="sendMessage",
        )
        self._progress_id = message.message_id
        self._edits.mark_shown(text)

    async def progress(self, text: str, preview: bytes | None = None) -> None:
        """Edit the progress message, at most every ~2 s and never with the same text."""
        text = cut(text, TEXT_MAX)
        if self._progress_id is None:
            await self._new_progress(text)
        else:
            await self._edits.offer(text)

    async def settled(self) -> None:
        """Wait until a progress edit kept for later has been made."""
        await self._edits.settled()

    async def _edit_progress(self, text: str) -> None:
        if self._progress_id is None:
            return
        message_id = self._progress_id
        await with_flood_control(
            lambda: self.bot.edit_message_text(text, chat_id=self.chat_id, message_id=message_id),
            sleep=self.context.sleep,
            what="editMessageText",
        )

    async def text(self, text: str, *, private: bool = False) -> None:
        """A message; `private` in a group replies to the user (Telegram has no ephemeral)."""
        text = cut(text, TEXT_MAX) or "…"
        if private and utf16_len_ok(text) and await self.answer_callback(text, alert=True):
            return  # a button press: the closest thing to ephemeral is an alert
        await self.answer_callback()
        reply_to = self._reply_to() if private or self.chat_id < 0 else None
        await self._send(
            lambda: self.bot.send_message(self.chat_id, text, reply_parameters=reply_to),
            what="sendMessage",
        )
        if not private:
            await self._drop_progress()

    async def file(self, name: str, data: bytes, text: str, *, private: bool = False) -> None:
        """sendDocument with the text as its caption."""
        from aiogram.types import BufferedInputFile

        await self.answer_callback()
        caption = cut(text, 1024) or None
        reply_to = self._reply_to() if private or self.chat_id < 0 else None
        await self._send(
            lambda: self.bot.send_document(
                self.chat_id,
                BufferedInputFile(data, filename=name),
                caption=caption,
                reply_parameters=reply_to,
            ),
            what="sendDocument",
        )
        await self._drop_progress()

    async def images(self, post: BatchPost) -> None:
        """One photo, or albums of up to 10, captioned on the first; then the buttons."""
        caption = caption_html(post)
        photos, documents = [], []
        for path in post.images:
            fits = not self.context.send_documents and photo_fits(path)
            (photos if fits else documents).append(path)
        sent: list[int] = []
        for kind, paths in (("photo", photos), ("document", documents)):
            for group in chunks(paths):
                first = caption if not sent else None
                ids = await self._album(kind, group, first, spoiler=post.spoiler)
                sent += ids
        await self._buttons(post, sent)
        await self._drop_progress()

    async def _album(
        self, kind: str, paths: list[Path], caption: str | None, *, spoiler: bool = False
    ) -> list[int]:
        from aiogram.types import FSInputFile, InputMediaDocument, InputMediaPhoto

        def upload(path: Path) -> FSInputFile:
            return FSInputFile(path, filename=path.name)

        mode = "HTML" if caption else None
        # Only photos can hide behind a spoiler; documents show their name, not the picture.
        hidden = {"has_spoiler": True} if spoiler and kind == "photo" else {}
        if len(paths) == 1:
            send = self.bot.send_photo if kind == "photo" else self.bot.send_document
            method = "sendPhoto" if kind == "photo" else "sendDocument"
            message = await self._send(
                lambda: send(
                    self.chat_id, upload(paths[0]), caption=caption, parse_mode=mode, **hidden
                ),
                what=method,
            )
            return [message.message_id]
        media_class = InputMediaPhoto if kind == "photo" else InputMediaDocument

        def media() -> list[Any]:
            return [
                media_class(
                    media=upload(path),
                    caption=caption if n == 0 else None,
                    parse_mode=mode if n == 0 else None,
                    **hidden,
                )
                for n, path in enumerate(paths)
            ]

        messages = await self._send(
            lambda: self.bot.send_media_group(self.chat_id, media()),
            count=len(paths),
            what="sendMediaGroup",
        )
        return [message.message_id for message in messages]

    async def _buttons(self, post: BatchPost, album: list[int]) -> None:
        from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, ReplyParameters

        lines = []
        if post.mention:
            lines.append(f"For {self.reply.get('user_name') or 'you'}: your request is done.")
        lines += post.errors
        if post.note:
            lines.append(post.note)
        if not lines:
            lines.append(f"{len(post.images)} × “{cut(post.title, 200)}”")
        rows = [
            [
                InlineKeyboardButton(text=button.label, callback_data=button.custom_id)
                for button in row
                if len(button.custom_id.encode()) <= 64
            ]
            for row in post.buttons
        ]
        rows = [row for row in rows if row]
        markup = InlineKeyboardMarkup(inline_keyboard=rows) if rows else None
        reply_to = (
            ReplyParameters(message_id=album[0], allow_sending_without_reply=True)
            if album
            else None
        )
        text = cut("\n".join(lines), TEXT_MAX)
        message = await self._send(
            lambda: self.bot.send_message(
                self.chat_id, text, reply_markup=markup, reply_parameters=reply_to
            ),
            what="sendMessage",
        )
        self.context.posts.remember(self.chat_id, message.message_id, album, post.batch_id)

    async def delete_post(self) -> None:
        """Delete the message the button was on and the album above it."""
        await self.answer_callback()
        post_id = self.reply.get("post_message_id")
        if not post_id:
            return
        post_id = int(post_id)
        album = self.context.posts.take(self.chat_id, post_id)
        if album is None:  # a post from before this store: its buttons reply to the album
            album = [int(m) for m in [self.reply.get("post_reply_to")] if m]
        for message_id in [*album, post_id]:
            try:
                await with_flood_control(
                    lambda m=message_id: self.bot.delete_message(self.chat_id, m),
                    sleep=self.context.sleep,
                    what="deleteMessage",
                )
            except Exception:  # already gone, or older than 48 h in a group
                log.debug("could not delete message %s", message_id, exc_info=True)


def utf16_len_ok(text: str) -> bool:
    """Whether `text` fits a callback alert."""
    return len(text.encode("utf-16-le")) // 2 <= ALERT_MAX
