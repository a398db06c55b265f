"""The Bot API's wire-level rules for the fake Telegram server: errors, limits, markup, media.

Error texts follow tdlib/telegram-bot-api's Client.cpp (TDLib errors are prefixed "Bad Request: "
and lower-cased unless they are CODES); limits follow the Bot API docs.
"""

from __future__ import annotations

import html.parser
import io
import mimetypes
import re
from dataclasses import dataclass, field
from typing import Any

TEXT_MAX, CAPTION_MAX, CALLBACK_DATA_MAX, ALBUM_MAX = 4096, 1024, 64, 10
PHOTO_MAX_BYTES, UPLOAD_MAX_BYTES, DOWNLOAD_MAX_BYTES = 10 << 20, 50 << 20, 20 << 20
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
CHAT_ACTIONS = set(
    "typing upload_photo record_video upload_video record_voice upload_voice upload_document"
    " choose_sticker find_location record_video_note upload_video_note".split()
)
HTML_TAGS = set(
    "b strong i em u ins s strike del span tg-spoiler a code pre blockquote tg-emoji".split()
)
# What an empty allowed_updates list leaves out.
DEFAULT_UPDATE_TYPES = {"chat_member", "message_reaction", "message_reaction_count"}


class ApiError(Exception):
    """A refusal the way the Bot API words it."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status, self.description, self.retry_after = status, description, retry_after


def bad(description: str) -> ApiError:
    """A 400 'Bad Request: ...' refusal."""
    return ApiError(400, f"Bad Request: {description}")


def utf16_len(text: str) -> int:
    """Telegram counts lengths in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


@dataclass
class UploadedFile:
    """A file part the bot uploaded, with the image size decoded from its bytes when it is one."""

    part: str  # the multipart field it came in
    filename: str
    data: bytes = field(repr=False)
    file_id: str = ""
    width: int | None = None
    height: int | None = None


@dataclass
class MediaItem:
    """One item of a sendMediaGroup album."""

    type: str
    caption: str | None
    parse_mode: str | None
    file: UploadedFile


@dataclass
class SentRecord:
    """One successful send* call: what the chat now shows."""

    method: str
    chat_id: int
    messages: list[dict[str, Any]]
    text: str | None = None
    caption: str | None = None
    parse_mode: str | None = None
    reply_markup: dict[str, Any] | None = None
    files: list[UploadedFile] = field(default_factory=list)
    media: list[MediaItem] = field(default_factory=list)

    @property
    def message_id(self) -> int:
        """The id of the (first) message sent."""
        return self.messages[0]["message_id"]


@dataclass
class Call:
    """One request received, with the status it was answered with."""

    method: str
    params: dict[str, Any]
    files: list[str]
    status: int = 0
    description: str | None = None


class _HtmlCheck(html.parser.HTMLParser):
    """Collects the visible text of an HTML-formatted message and refuses bad markup."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag not in HTML_TAGS:
            raise bad(
                f'can\'t parse entities: Unsupported start tag "{tag}" at byte offset '
                f"{self.getpos()[1]}"
            )
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            expected = f'expected "</{self.open[-1]}>", ' if self.open else ""
            raise bad(
                f"can't parse entities: Unmatched end tag at byte offset {self.getpos()[1]}"
                f', {expected}found "</{tag}>"'
            )
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def visible_text(text: str, parse_mode: str | None) -> str:
    """The text a user sees once Telegram has parsed the markup (what the limits count)."""
    mode = (parse_mode or "").lower()
    if mode == "html":
        checker = _HtmlCheck()
        checker.feed(text)
        checker.close()
        if checker.open:
            raise bad(
                "can't parse entities: Can't find end tag corresponding to start tag "
                f'"{checker.open[-1]}"'
            )
        return "".join(checker.parts)
    if mode == "markdownv2":
        out, i = [], 0
        while i < len(text):
            ch = text[i]
            if ch == "\\" and i + 1 < len(text):
                out.append(text[i + 1])
                i += 2
                continue
            if ch == "]" and text[i + 1 : i + 2] == "(":  # a link's URL is not shown
                i = text.find(")", i) + 1 or len(text)
                continue
            if ch in ">#+-=.!{}()[]" and not (ch == ">" and (i == 0 or text[i - 1] == "\n")):
                raise bad(
                    f"can't parse entities: Character '{ch}' is reserved and must be "
                    "escaped with the preceding '\\'"
                )
            if ch not in "*_~|`>":
                out.append(ch)
            i += 1
        return "".join(out)
    if mode == "markdown":
        return re.sub(r"[*_`\[\]]", "", text)
    if mode:
        raise bad("unsupported parse_mode")
    return text


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height decoded from the bytes, or None when they are not an image."""
    from PIL import Image, UnidentifiedImageError  # heavy: only when an upload arrives

    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (UnidentifiedImageError, OSError):
        return None


def photo_problem(file: UploadedFile) -> str | None:
    """Telegram's error for a photo it refuses (size, not an image, dimensions), else None."""
    if len(file.data) > PHOTO_MAX_BYTES:
        return "PHOTO_SAVE_FILE_INVALID"
    if file.width is None or file.height is None:
        return "IMAGE_PROCESS_FAILED"
    w, h = file.width, file.height
    if w + h > 10000 or max(w, h) > 20 * max(1, min(w, h)):
        return "PHOTO_INVALID_DIMENSIONS"
    return None


def photo_sizes(file: UploadedFile) -> list[dict[str, Any]]:
    """The PhotoSize ladder Telegram makes of an upload (thumbnails up to 2560 px)."""
    w, h = file.width or 1, file.height or 1
    sizes: list[dict[str, Any]] = []
    for n, limit in enumerate((90, 320, 800, 1280, 2560)):
        scale = min(1.0, limit / max(w, h))
        sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
        if not sizes or (sw, sh) != (sizes[-1]["width"], sizes[-1]["height"]):
            sizes.append(
                {
                    "file_id": f"{file.file_id}_{n}",
                    "file_unique_id": f"u{file.file_id}_{n}",
                    "file_size": len(file.data) if scale == 1 else len(file.data) // 4,
                    "width": sw,
                    "height": sh,
                }
            )
        if scale == 1:
            break
    return sizes


def media_content(kind: str, file: UploadedFile) -> dict[str, Any]:
    """The Message fields that show an uploaded photo or document."""
    if kind == "photo":
        return {"photo": photo_sizes(file)}
    mime = mimetypes.guess_type(file.filename)[0] or "application/octet-stream"
    content = {"file_id": file.file_id, "file_unique_id": f"u{file.file_id}"}
    content.update(file_name=file.filename, mime_type=mime, file_size=len(file.data))
    return {kind: content}


ADMIN_RIGHTS = (
    "can_manage_chat can_delete_messages can_manage_video_chats can_restrict_members"
    " can_change_info can_invite_users can_post_stories can_edit_stories can_delete_stories"
    " can_pin_messages".split()
)


def member(user: dict[str, Any], status: str) -> dict[str, Any]:
    """A ChatMember of the given status ("creator", "administrator" or "member")."""
    if status == "creator":
        return {"status": status, "user": user, "is_anonymous": False}
    if status == "administrator":
        shape = {"status": status, "user": user, "can_be_edited": False, "is_anonymous": False}
        shape.update(can_promote_members=False, can_send_welcome_messages=False)
        return shape | dict.fromkeys(ADMIN_RIGHTS, True)
    return {"status": "member", "user": user}


def chat_full_info(chat: dict[str, Any]) -> dict[str, Any]:
    """The ChatFullInfo getChat answers for a chat."""
    gifts = "unlimited_gifts limited_gifts unique_gifts premium_subscription gifts_from_channels"
    extra = {"accent_color_id": 0, "max_reaction_count": 11}
    return chat | extra | {"accepted_gift_types": dict.fromkeys(gifts.split(), False)}
