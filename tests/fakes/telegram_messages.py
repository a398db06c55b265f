"""Sending and changing messages in the fake Bot API: sendMessage, photos, albums, edits, deletes.

A mixin of `BotApiState` (telegram_bot_api.py): the checks and texts of the real servers for
text, captions, markup, files and replies, and the records tests read in `sent`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tests.fakes.telegram_wire import (
    ALBUM_MAX,
    CALLBACK_DATA_MAX,
    CAPTION_MAX,
    NOT_MODIFIED,
    TEXT_MAX,
    MediaItem,
    SentRecord,
    UploadedFile,
    bad,
    media_content,
    photo_problem,
    utf16_len,
    visible_text,
)

# An @username Telegram turns into a mention entity: 5-32 letters, digits or underscores.
USERNAME_MENTION = re.compile(r"(?<![\w@])@[A-Za-z][A-Za-z0-9_]{4,31}(?![\w])")


class MessageMethods:
    """The message methods; the state they change (messages, files, sent) is BotApiState's."""

    if TYPE_CHECKING:
        bot_user: dict[str, Any]
        messages: dict[tuple[int, int], dict[str, Any]]
        files: dict[str, UploadedFile]
        sent: list[SentRecord]
        _ids: Any

        def _chat_of(self, params: Mapping[str, Any], key: str = "chat_id") -> dict[str, Any]: ...
        def _json(self, params: Mapping[str, Any], key: str, error: str) -> Any: ...
        def _throttle(self, chat_id: int, count: int) -> None: ...
        def _date(self) -> int: ...
        def _next_message_id(self, chat_id: int) -> int: ...

    def _markup(self, params: Mapping[str, Any]) -> dict[str, Any] | None:
        markup = self._json(params, "reply_markup", "can't parse reply keyboard markup JSON object")
        if not isinstance(markup, dict) or "inline_keyboard" not in markup:
            return None  # reply keyboards are not part of the Message object
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise bad(
                'Field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays'
            )
        for button in (b for row in rows for b in row):
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= CALLBACK_DATA_MAX:
                raise bad("BUTTON_DATA_INVALID")
        return markup

    def _caption(self, caption: Any, parse_mode: Any) -> str | None:
        if caption in (None, ""):
            return None
        shown = visible_text(str(caption), parse_mode)
        if utf16_len(shown) > CAPTION_MAX:
            raise bad("message caption is too long")
        return shown

    def _input_file(
        self, value: Any, files: dict[str, UploadedFile], field_name: str
    ) -> UploadedFile:
        if isinstance(value, str) and value.startswith("attach://"):
            value = files.get(value[len("attach://") :])
        elif value is None:
            value = files.get(field_name)
        elif isinstance(value, str) and value.rsplit("_", 1)[0] in self.files:
            return self.files[value.rsplit("_", 1)[0]]  # a file_id sent before
        if not isinstance(value, UploadedFile):
            raise bad("wrong file identifier/HTTP URL specified")
        if not value.data:
            raise bad("file must be non-empty")
        if not value.file_id:
            value.file_id = f"AgAC{next(self._ids):08d}"
            self.files[value.file_id] = value
        return value

    def _replied(self, chat: dict[str, Any], params: Mapping[str, Any]) -> dict[str, Any] | None:
        """The message a send replies to (reply_parameters), as the reply's reply_to_message."""
        wanted = self._json(params, "reply_parameters", "can't parse reply parameters JSON object")
        if not wanted and params.get("reply_to_message_id"):  # the field before Bot API 7.0
            wanted = {"message_id": params["reply_to_message_id"]}
        if not wanted:
            return None
        target = self.messages.get((chat["id"], int(wanted.get("message_id") or 0)))
        if target is None:
            if str(wanted.get("allow_sending_without_reply")).lower() == "true":
                return None
            raise bad("message to be replied not found")
        return {k: v for k, v in target.items() if k != "reply_to_message"}  # one level, as sent

    def _new_message(self, chat: dict[str, Any], **content: Any) -> dict[str, Any]:
        message_id = self._next_message_id(chat["id"])
        message = {"message_id": message_id, "from": self.bot_user, "chat": chat}
        message |= {"date": self._date()} | {k: v for k, v in content.items() if v is not None}
        shown = message.get("text") or message.get("caption") or ""
        mentions = [
            {"type": "mention", "offset": utf16_len(shown[: m.start()]), "length": len(m[0])}
            for m in USERNAME_MENTION.finditer(shown)
        ]
        if mentions:  # as Telegram parses them: each notifies that user in a group
            message["entities" if "text" in message else "caption_entities"] = mentions
        self.messages[(chat["id"], message_id)] = message
        return message

    def _text(self, p: Mapping[str, Any]) -> str:
        text = str(p.get("text") or "")
        shown = visible_text(text, p.get("parse_mode")) if text.strip() else ""
        if not shown.strip():
            raise bad("message text is empty")
        if utf16_len(shown) > TEXT_MAX:
            raise bad("message is too long")
        return shown

    def _edit_target(self, params: Mapping[str, Any], action: str) -> dict[str, Any]:
        chat = self._chat_of(params)
        message = self.messages.get((chat["id"], int(params.get("message_id") or 0)))
        if message is None or message["from"]["id"] != self.bot_user["id"]:
            raise bad(f"message to {action} not found")
        return message

    # --- methods (name after _m_ is the lower-cased Bot API method) ------------------------
    async def _m_sendmessage(self, p: dict, f: dict) -> Any:
        chat, shown, markup = self._chat_of(p), self._text(p), self._markup(p)
        replied = self._replied(chat, p)
        self._throttle(chat["id"], 1)
        message = self._new_message(chat, text=shown, reply_markup=markup, reply_to_message=replied)
        record = SentRecord("sendMessage", chat["id"], [message], text=shown, reply_markup=markup)
        record.parse_mode = p.get("parse_mode")
        self.sent.append(record)
        return message

    async def _send_file(self, p: dict, f: dict, kind: str) -> Any:
        chat = self._chat_of(p)
        caption = self._caption(p.get("caption"), p.get("parse_mode"))
        markup = self._markup(p)
        file = self._input_file(p.get(kind), f, kind)
        if kind == "photo" and (problem := photo_problem(file)):
            raise bad(problem)
        replied = self._replied(chat, p)
        self._throttle(chat["id"], 1)
        message = self._new_message(
            chat,
            caption=caption,
            reply_markup=markup,
            reply_to_message=replied,
            **media_content(kind, file),
        )
        method = "sendPhoto" if kind == "photo" else "sendDocument"
        record = SentRecord(method, chat["id"], [message], caption=caption, files=[file])
        record.parse_mode, record.reply_markup = p.get("parse_mode"), markup
        self.sent.append(record)
        return message

    async def _m_sendphoto(self, p: dict, f: dict) -> Any:
        return await self._send_file(p, f, "photo")

    async def _m_senddocument(self, p: dict, f: dict) -> Any:
        return await self._send_file(p, f, "document")

    async def _m_sendmediagroup(self, p: dict, f: dict) -> Any:
        chat = self._chat_of(p)
        if p.get("media") in (None, ""):
            raise bad('parameter "media" is required')
        media = self._json(p, "media", "can't parse media JSON object")
        if not isinstance(media, list):
            raise bad("Expected an Array of InputMedia")
        if not media:
            raise bad("there are no messages to send")
        if len(media) > ALBUM_MAX:
            raise bad("too many messages to send as an album")
        kinds = [str(m.get("type")) for m in media]
        if "document" in kinds and set(kinds) != {"document"}:
            raise bad("document can't be mixed with other media types")
        items = []
        for m in media:
            ref = m.get("media")
            if isinstance(ref, str) and ref.startswith("attach://") and ref[9:] not in f:
                raise bad("can't parse InputMedia: media not found")
            caption = self._caption(m.get("caption"), m.get("parse_mode"))
            items.append(
                MediaItem(m["type"], caption, m.get("parse_mode"), self._input_file(ref, f, ""))
            )
        for n, item in enumerate(items, 1):  # the servers refuse a photo after the upload
            if item.type == "photo" and (problem := photo_problem(item.file)):
                raise bad(f'failed to send message #{n} with the error message "{problem}"')
        replied = self._replied(chat, p)
        self._throttle(chat["id"], len(items))
        group_id = str(13000000000000000 + next(self._ids)) if len(items) > 1 else None
        messages = []
        for item in items:
            content = media_content(item.type, item.file)
            messages.append(
                self._new_message(
                    chat,
                    media_group_id=group_id,
                    caption=item.caption,
                    reply_to_message=replied,
                    **content,
                )
            )
        files = [i.file for i in items]
        record = SentRecord("sendMediaGroup", chat["id"], messages, files=files, media=items)
        record.caption = items[0].caption
        self.sent.append(record)
        return messages

    async def _m_editmessagetext(self, p: dict, f: dict) -> Any:
        message = self._edit_target(p, "edit")
        if "text" not in message:
            raise bad("there is no text in the message to edit")
        shown, markup = self._text(p), self._markup(p)
        if shown == message["text"] and markup == message.get("reply_markup"):
            raise bad(NOT_MODIFIED.removeprefix("Bad Request: "))
        message.update(text=shown, edit_date=self._date())
        message.pop("reply_markup", None)
        if markup:
            message["reply_markup"] = markup
        return message

    async def _m_editmessagereplymarkup(self, p: dict, f: dict) -> Any:
        message = self._edit_target(p, "edit")
        markup = self._markup(p)
        if markup == message.get("reply_markup"):
            raise bad(NOT_MODIFIED.removeprefix("Bad Request: "))
        message.pop("reply_markup", None)
        if markup:
            message["reply_markup"] = markup
        message["edit_date"] = self._date()
        return message

    async def _m_deletemessage(self, p: dict, f: dict) -> Any:
        message = self._edit_target(p, "delete")
        del self.messages[(message["chat"]["id"], message["message_id"])]
        return True
