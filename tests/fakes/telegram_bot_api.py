"""The Bot API's behaviour for the fake Telegram server: its state, limits and methods.

`BotApiState` holds what a real Bot API server knows about one bot (chats, users, messages,
commands, webhook, queued updates, files) and implements each method as `_m_<lower-case name>`
taking the request's fields and file parts; telegram_server.py puts HTTP in front of it. The
message methods (send, edit, delete) are in telegram_messages.py.
"""

from __future__ import annotations

import collections
import itertools
import json
import math
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from tests.fakes.telegram_messages import MessageMethods
from tests.fakes.telegram_wire import (
    CHAT_ACTIONS,
    DOWNLOAD_MAX_BYTES,
    ApiError,
    SentRecord,
    UploadedFile,
    bad,
    chat_full_info,
    member,
)

WINDOW_SLACK = 1e-6  # seconds: float noise in a clock reading never decides a rate window


class ManualClock:
    """A clock that moves only when told: rate-limit windows without real waits."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class BotApiState(MessageMethods):
    """What the Bot API server knows about one bot, and the methods that change it.

    `clock` (monotonic seconds; `time.monotonic` by default) drives the rate limits and
    retry_after windows; pass a ManualClock, or call freeze_clock(), to test them without
    waiting.
    """

    def __init__(
        self,
        token: str = "42:TEST",
        *,
        bot_username: str = "imagebot_test_bot",
        rate_limits: bool = True,
        per_second: int = 30,
        per_group_minute: int = 20,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.tokens = {token}
        bot_id = int(token.split(":", 1)[0])
        self.bot_user = {"id": bot_id, "is_bot": True, "first_name": "imagebot"}
        self.bot_user.update(username=bot_username, can_join_groups=True)
        self.bot_user.update(can_read_all_group_messages=False, supports_inline_queries=False)
        self.rate_limits = rate_limits  # 30 messages/s overall, 20/min per group, as documented
        self.per_second, self.per_group_minute = per_second, per_group_minute
        self.sent: list[SentRecord] = []
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        self.chats: dict[int, dict[str, Any]] = {}
        self.users: dict[int, dict[str, Any]] = {}
        self.admins: dict[int, list[int]] = {}
        self.owners: dict[int, int] = {}
        self.commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        self.chat_actions: list[tuple[int, str]] = []
        self.callback_answers: dict[str, dict[str, Any]] = {}
        self.files: dict[str, UploadedFile] = {}
        self.too_many_requests = 0  # 429s given, from the limits or injected
        self._callback_ids: set[str] = set()
        self._ids = itertools.count(1)
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._sends: collections.deque[float] = collections.deque()
        self._group_sends: dict[int, collections.deque[float]] = {}
        self.clock: Callable[[], float] = clock or time.monotonic
        self._offset = 0.0
        self._method_table = {
            name[3:]: getattr(self, name) for name in dir(self) if name.startswith("_m_")
        }

    # --- clock and rate limits ------------------------------------------------------------
    def now(self) -> float:
        """The fake's clock (monotonic seconds), which tests may freeze or move on."""
        return self.clock() + self._offset

    def freeze_clock(self) -> None:
        """Stop the clock (a ManualClock from 0) so rate windows do not depend on how fast the
        machine is, nor on float rounding of a large monotonic reading."""
        self.clock, self._offset = ManualClock(), 0.0

    def advance(self, seconds: float) -> None:
        """Move the clock on, e.g. past a retry_after, without sleeping."""
        if isinstance(self.clock, ManualClock):
            self.clock.advance(seconds)
        else:
            self._offset += seconds

    @staticmethod
    def _expired(sent_at: float, now: float, window: float) -> bool:
        # (t0 + 60) - t0 can come out as 59.99999999999 in floats; the slack absorbs it.
        return now - sent_at >= window - WINDOW_SLACK

    def _throttle(self, chat_id: int, count: int) -> None:
        if not self.rate_limits:
            return
        now = self.now()
        while self._sends and self._expired(self._sends[0], now, 1):
            self._sends.popleft()
        if self._sends and len(self._sends) + count > self.per_second:
            raise self._retry_after(self._sends[0] + 1 - now)
        group = self._group_sends.setdefault(chat_id, collections.deque())
        while group and self._expired(group[0], now, 60):
            group.popleft()
        if chat_id < 0 and group and len(group) + count > self.per_group_minute:
            raise self._retry_after(group[0] + 60 - now)
        self._sends.extend([now] * count)
        group.extend([now] * count)

    @staticmethod
    def _retry_after(seconds: float) -> ApiError:
        wait = max(1, math.ceil(round(seconds, 3)))  # no float noise: 60.0000001 is 60
        return ApiError(429, f"Too Many Requests: retry after {wait}", wait)

    def user(self, user: int | Mapping[str, Any]) -> dict[str, Any]:
        """A User object (an id gets a made-up name), registered with the fake."""
        if isinstance(user, int) and user in self.users:
            return self.users[user]
        data = {"id": user} if isinstance(user, int) else dict(user)
        n = data["id"]
        full = {"is_bot": False, "first_name": f"User{n}", "username": f"user{n}", **data}
        self.users[n] = full
        return full

    def chat(self, chat: int | Mapping[str, Any], user: Mapping[str, Any] | None = None) -> dict:
        """A Chat: positive ids are private, -100... supergroups, other negative ids groups."""
        if isinstance(chat, int) and chat in self.chats:
            return self.chats[chat]
        data = {"id": chat} if isinstance(chat, int) else dict(chat)
        n = data["id"]
        if n > 0:
            base = {"type": "private", "first_name": (user or {}).get("first_name", f"User{n}")}
        else:
            kind = "supergroup" if n <= -1000000000000 else "group"
            base = {"type": kind, "title": f"Group {-n}"}
        full = {**base, **data}
        self.chats[n] = full
        return full

    # --- helpers shared by the methods ---------------------------------------------------
    def _date(self) -> int:
        return int(time.time() + self._offset)

    def _next_message_id(self, chat_id: int) -> int:
        return next(self._message_ids.setdefault(chat_id, itertools.count(1)))

    def _chat_of(self, params: Mapping[str, Any], key: str = "chat_id") -> dict[str, Any]:
        raw = str(params.get(key, "")).strip()
        if not raw:
            raise bad(f"{key} is empty")
        if raw.startswith("@"):
            found = [c for c in self.chats.values() if c.get("username") == raw[1:]]
        else:
            chat_id = int(raw) if re.fullmatch(r"-?\d+", raw) else None
            found = [self.chats[chat_id]] if chat_id in self.chats else []
        if not found:
            raise bad("chat not found")
        return found[0]

    def _json(self, params: Mapping[str, Any], key: str, error: str) -> Any:
        value = params.get(key)
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise bad(error) from None
        return value

    # --- methods (name after _m_ is the lower-cased Bot API method) ------------------------
    async def _m_getme(self, p: dict, f: dict) -> Any:
        return self.bot_user

    def _commands_key(self, p: dict) -> tuple[str, str]:
        scope = self._json(p, "scope", "can't parse BotCommandScope JSON object")
        scope = scope or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(p.get("language_code") or "")

    async def _m_setmycommands(self, p: dict, f: dict) -> Any:
        commands = self._json(p, "commands", "can't parse commands JSON object")
        if not isinstance(commands, list):
            raise bad("Expected an Array of BotCommand")
        if len(commands) > 100:
            raise bad("too many commands specified")
        for command in commands:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", str(command.get("command", "")).lstrip("/")):
                raise bad("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                empty = not command.get("description")
                raise bad(
                    "command description is empty" if empty else "BOT_COMMAND_DESCRIPTION_INVALID"
                )
        self.commands[self._commands_key(p)] = [
            {"command": str(c["command"]).lstrip("/"), "description": c["description"]}
            for c in commands
        ]
        return True

    async def _m_getmycommands(self, p: dict, f: dict) -> Any:
        return self.commands.get(self._commands_key(p), [])

    async def _m_deletemycommands(self, p: dict, f: dict) -> Any:
        self.commands.pop(self._commands_key(p), None)
        return True

    async def _m_sendchataction(self, p: dict, f: dict) -> Any:
        chat = self._chat_of(p)
        if p.get("action") not in CHAT_ACTIONS:
            raise bad("wrong parameter action in request")
        self.chat_actions.append((chat["id"], str(p["action"])))
        return True

    async def _m_answercallbackquery(self, p: dict, f: dict) -> Any:
        query_id = str(p.get("callback_query_id") or "")
        if query_id not in self._callback_ids or query_id in self.callback_answers:
            raise bad("query is too old and response timeout expired or query ID is invalid")
        alert = str(p.get("show_alert")).lower() == "true"
        self.callback_answers[query_id] = {"text": p.get("text"), "show_alert": alert}
        return True

    async def _m_getchat(self, p: dict, f: dict) -> Any:
        return chat_full_info(self._chat_of(p))

    def _member(self, chat_id: int, user_id: int) -> dict[str, Any]:
        user = self.bot_user if user_id == self.bot_user["id"] else self.user(user_id)
        if self.owners.get(chat_id) == user_id:
            return member(user, "creator")
        return member(user, "administrator" if user_id in self.admins.get(chat_id, []) else "")

    async def _m_getchatadministrators(self, p: dict, f: dict) -> Any:
        chat = self._chat_of(p)
        if chat["type"] == "private":
            raise bad("there are no administrators in the private chat")
        return [self._member(chat["id"], uid) for uid in self.admins.get(chat["id"], [])]

    async def _m_getchatmember(self, p: dict, f: dict) -> Any:
        chat = self._chat_of(p)
        user_id = int(p.get("user_id") or 0)
        if user_id not in self.users and user_id != self.bot_user["id"]:
            raise bad("user not found")
        return self._member(chat["id"], user_id)

    async def _m_getfile(self, p: dict, f: dict) -> Any:
        file_id = str(p.get("file_id") or "").rsplit("_", 1)[0]
        upload = self.files.get(file_id)
        if upload is None:
            raise bad("invalid file_id")
        if len(upload.data) > DOWNLOAD_MAX_BYTES:
            raise bad("file is too big")
        answer = {"file_id": p["file_id"], "file_unique_id": f"u{file_id}"}
        return answer | {"file_size": len(upload.data), "file_path": f"files/{file_id}"}
