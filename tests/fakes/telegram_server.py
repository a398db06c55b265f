"""A loopback fake of the Telegram Bot API that the real aiogram 3 bot polls and calls.

Routes as the real server: {base}/bot{token}/{method} (form, multipart with attach://, JSON or
query string; method names case-insensitive) and {base}/file/bot{token}/{path}. It answers
{"ok": true, "result": ...} or the real error shapes and texts, enforces the real limits (see
telegram_wire.py and telegram_bot_api.py), long-polls getUpdates, delivers to webhooks, and can be
told to fail. Usage:

    async with FakeTelegram() as fake:
        api = TelegramAPIServer.from_base(fake.base_url)
        bot = Bot("42:TEST", session=AiohttpSession(api=api))
        fake.send_command(-100200, 7, "/generate 4 512x512 a foggy harbour")
        await fake.wait_for(lambda: fake.sent)
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import itertools
import json
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from tests.fakes.loopback import LoopbackServer
from tests.fakes.telegram_bot_api import WINDOW_SLACK, BotApiState
from tests.fakes.telegram_wire import (
    DEFAULT_UPDATE_TYPES,
    UPLOAD_MAX_BYTES,
    ApiError,
    Call,
    SentRecord,
    UploadedFile,
    bad,
    image_size,
    utf16_len,
)

Fault = Literal["429", "500", "hang", "malformed"]


class _Malformed(Exception):
    """Raised to answer with a non-JSON body (a proxy's 502 page)."""


class FakeTelegram(BotApiState, LoopbackServer):
    """The Bot API on 127.0.0.1: records what the bot sends, feeds it updates, can fail."""

    shutdown_timeout = 0.5

    def __init__(self, token: str = "42:TEST", **options: Any) -> None:
        BotApiState.__init__(self, token, **options)
        LoopbackServer.__init__(self)
        self.requests: list[Call] = []
        self.updates: list[dict[str, Any]] = []  # queued, not yet confirmed by an offset
        self.webhook: dict[str, Any] = {"url": "", "secret_token": None}
        self._allowed: set[str] | None = None
        self._update_ids = itertools.count(700000001)
        self._faults: dict[str, collections.deque[tuple[Fault, int]]] = {}
        self._blocked_until: dict[str, float] = {}
        self._changed = asyncio.Event()
        self._poll_generation = 0

    # --- lifecycle -----------------------------------------------------------------------
    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=UPLOAD_MAX_BYTES + (8 << 20))
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        return app

    async def before_stop(self) -> None:
        self._wake()  # `closing` is set: long polls and hung calls return, shutdown is quick

    @property
    def base_url(self) -> str:
        """The root the bot is pointed at (TELEGRAM_API_BASE)."""
        return self.url

    def fail_next(
        self, method: str, kind: Fault = "429", times: int = 1, retry_after: int = 1
    ) -> None:
        """The next `times` calls to `method` get a 429 (with retry_after), a 500, hang or junk."""
        queue = self._faults.setdefault(method.lower(), collections.deque())
        queue.extend([(kind, retry_after)] * times)

    # --- what tests inject -----------------------------------------------------------------
    def send_text(
        self, chat: int | Mapping[str, Any], user: int | Mapping[str, Any], text: str
    ) -> dict:
        """Queue a message update from `user` in `chat`; a leading /command gets its entity."""
        sender = self.user(user)
        room = self.chat(chat, sender)
        message: dict[str, Any] = {
            "message_id": self._next_message_id(room["id"]),
            "from": sender,
            "chat": room,
            "date": self._date(),
            "text": text,
        }
        if text.startswith("/"):
            word = text.split(maxsplit=1)[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": utf16_len(word)}]
        self.messages[(room["id"], message["message_id"])] = message
        return self.push_update({"message": message})

    def send_command(
        self, chat: int | Mapping[str, Any], user: int | Mapping[str, Any], text: str
    ) -> dict:
        """Queue a /command message update (e.g. "/generate 4 512x512 a foggy harbour")."""
        if not text.startswith("/"):
            raise ValueError(f"a command starts with '/': {text!r}")
        return self.send_text(chat, user, text)

    def press_button(
        self,
        message: SentRecord | Mapping[str, Any],
        callback_data: str,
        user: int | Mapping[str, Any],
        *,
        forged: bool = False,
    ) -> dict:
        """Queue a callback_query for a button of a message the bot sent (as it now shows);
        `forged`: data no button carries, as a modified client or a replayed update sends."""
        ref = message.messages[0] if isinstance(message, SentRecord) else message
        chat_id = ref["chat"]["id"]
        current = self.messages.get((chat_id, ref["message_id"]))
        if current is None:
            raise ValueError(f"message {ref['message_id']} in chat {chat_id} is not shown")
        rows = (current.get("reply_markup") or {}).get("inline_keyboard", [])
        shown = any(b.get("callback_data") == callback_data for row in rows for b in row)
        if not (shown or forged):
            raise ValueError(f"no button with callback_data {callback_data!r} on that message")
        query = {
            "id": str(next(self._ids) * 7919 + 10**15),
            "from": self.user(user),
            "message": json.loads(json.dumps(current)),  # as shown when pressed
            "chat_instance": str(abs(hash(chat_id)) % 10**18),
            "data": callback_data,
        }
        self._callback_ids.add(query["id"])
        return self.push_update({"callback_query": query})

    def push_update(self, body: dict[str, Any]) -> dict[str, Any]:
        """Queue any update body (e.g. {"my_chat_member": ...}); returns the full update."""
        update = {"update_id": next(self._update_ids), **body}
        self.updates.append(update)
        self._wake()
        return update

    def set_admins(self, chat_id: int, user_ids: list[int], owner: int | None = None) -> None:
        """Make these users the group's administrators (the owner, if given, is the creator)."""
        self.chat(chat_id)
        ids = ([owner] if owner is not None else []) + list(user_ids)
        for user_id in ids:
            self.user(user_id)
        self.admins[chat_id] = ids
        if owner is not None:
            self.owners[chat_id] = owner

    async def wait_for(self, condition: Callable[[], Any], timeout: float = 10) -> Any:
        """Wait until condition() is truthy and return it; TimeoutError after `timeout` s."""
        deadline = time.monotonic() + timeout
        while not (result := condition()):
            if time.monotonic() > deadline:
                sent = [(r.method, r.chat_id, r.text or r.caption) for r in self.sent]
                raise TimeoutError(f"condition not met within {timeout} s; sent: {sent}")
            await asyncio.sleep(0.01)
        return result

    async def deliver_via_webhook(
        self, update: dict[str, Any], url: str | None = None, secret: str | None = None
    ) -> int:
        """POST an update to the bot's webhook as Telegram does; runs a method in the reply."""
        url = url or self.webhook["url"]
        secret = secret if secret is not None else self.webhook["secret_token"]
        host = urlsplit(url).hostname or ""
        if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"webhooks are only delivered on loopback, not {url}")
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {}
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, json=update, headers=headers) as resp,
        ):
            if resp.status == 200 and resp.content_type == "multipart/form-data":
                params, files = await self._read_multipart(
                    aiohttp.MultipartReader.from_response(resp)
                )
                method = str(params.pop("method", ""))
                if method.lower() in self._method_table:
                    await self._run(method, params, files)
            if resp.status == 200 and update in self.updates:
                self.updates.remove(update)
            return resp.status

    def message(self, chat_id: int, message_id: int) -> dict[str, Any] | None:
        """The message as the chat shows it now (after edits), or None once deleted."""
        return self.messages.get((chat_id, message_id))

    def texts(self, chat_id: int | None = None) -> list[str]:
        """Texts of the sendMessage calls (to one chat, or all)."""
        return [
            r.text or ""
            for r in self.sent
            if r.method == "sendMessage" and chat_id in (None, r.chat_id)
        ]

    # --- update delivery --------------------------------------------------------------------
    def _wake(self) -> None:
        woken, self._changed = self._changed, asyncio.Event()
        woken.set()

    async def _m_getupdates(self, p: dict, f: dict) -> Any:
        if self.webhook["url"]:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset, limit = int(p.get("offset") or 0), int(p.get("limit") or 100)
        timeout = float(p.get("timeout") or 0)
        if "allowed_updates" in p:
            wanted = set(self._json(p, "allowed_updates", "can't parse allowed_updates") or [])
            self._allowed = wanted or None
        if offset > 0:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        elif offset < 0:
            self.updates = self.updates[offset:]
        self._poll_generation += 1
        generation, deadline = self._poll_generation, time.monotonic() + timeout
        self._wake()  # an older long poll is terminated, as on the real server
        while True:
            if generation != self._poll_generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; make "
                    "sure that only one bot instance is running",
                )
            ready = [u for u in self.updates if self._wanted(u)][: max(1, min(limit, 100))]
            remaining = deadline - time.monotonic()
            if ready or remaining <= 0 or self.closing.is_set():
                return ready
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass

    def _wanted(self, update: dict[str, Any]) -> bool:
        kind = next(k for k in update if k != "update_id")
        return kind in self._allowed if self._allowed else kind not in DEFAULT_UPDATE_TYPES

    async def _m_setwebhook(self, p: dict, f: dict) -> Any:
        url, secret = str(p.get("url") or ""), p.get("secret_token")
        if url and urlsplit(url).scheme not in ("http", "https"):
            raise bad("bad webhook: An HTTPS URL must be provided for webhook")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise bad("secret token contains unallowed characters")
        self.webhook = {
            "url": url,
            "secret_token": secret,
            "allowed_updates": self._json(p, "allowed_updates", "bad allowed_updates"),
        }
        if str(p.get("drop_pending_updates")).lower() == "true":
            self.updates.clear()
        return True

    async def _m_deletewebhook(self, p: dict, f: dict) -> Any:
        self.webhook = {"url": "", "secret_token": None}
        if str(p.get("drop_pending_updates")).lower() == "true":
            self.updates.clear()
        return True

    async def _m_getwebhookinfo(self, p: dict, f: dict) -> Any:
        info = {
            "url": self.webhook["url"],
            "has_custom_certificate": False,
            "pending_update_count": len(self.updates),
        }
        if self.webhook["url"]:
            info.update(max_connections=40, ip_address="127.0.0.1")
        return info

    # --- HTTP layer ------------------------------------------------------------------------
    async def _not_found(self, request: web.Request) -> web.Response:
        return self._error(ApiError(404, "Not Found"))

    def _error(self, error: ApiError) -> web.Response:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": error.status,
            "description": error.description,
        }
        headers = {}
        if error.retry_after is not None:
            body["parameters"] = {"retry_after": error.retry_after}
            headers["Retry-After"] = str(error.retry_after)
        if error.status == 429:
            self.too_many_requests += 1
        return web.json_response(body, status=error.status, headers=headers)

    async def _read_multipart(self, reader: aiohttp.MultipartReader) -> tuple[dict, dict]:
        params: dict[str, Any] = {}
        files: dict[str, UploadedFile] = {}
        while (part := await reader.next()) is not None:
            assert isinstance(part, aiohttp.BodyPartReader)
            name = part.name or ""
            if part.filename is not None:
                data = await part.read()
                files[name] = UploadedFile(name, part.filename, bytes(data))
            else:
                params[name] = await part.text()
        return params, files

    async def _api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] not in self.tokens:
            return self._error(ApiError(401, "Unauthorized"))
        method = request.match_info["method"]
        params: dict[str, Any] = dict(request.query)
        files: dict[str, UploadedFile] = {}
        if request.content_type.startswith("multipart/"):
            more, files = await self._read_multipart(await request.multipart())
            params.update(more)
        elif request.content_type == "application/json":
            params.update(await request.json())
        elif request.can_read_body:
            params.update(await request.post())
        if method.lower() not in self._method_table:
            self.requests.append(Call(method, params, list(files), 404))
            return self._error(ApiError(404, "Not Found: method not found"))
        return await self._run(method, params, files)

    async def _run(
        self, method: str, params: dict[str, Any], files: dict[str, UploadedFile]
    ) -> web.Response:
        call = Call(method, params, list(files))
        self.requests.append(call)
        try:
            result = await self._dispatch(method.lower(), params, files)
        except ApiError as error:
            call.status, call.description = error.status, error.description
            return self._error(error)
        except _Malformed:
            call.status = 502
            return web.Response(
                status=502,
                text="<html><body>502 Bad Gateway</body></html>",
                content_type="text/html",
            )
        call.status = 200
        return web.json_response({"ok": True, "result": result})

    async def _dispatch(self, method: str, params: dict, files: dict[str, UploadedFile]) -> Any:
        blocked = self._blocked_until.get(method, 0) - self.now()
        if blocked > WINDOW_SLACK:
            raise self._retry_after(blocked)
        queue = self._faults.get(method)
        if queue:
            kind, retry_after = queue.popleft()
            if kind == "429":
                self._blocked_until[method] = self.now() + retry_after
                raise self._retry_after(retry_after)
            if kind == "500":
                raise ApiError(500, "Internal Server Error")
            if kind == "malformed":
                raise _Malformed
            await self.closing.wait()  # "hang": answer only when the fake shuts down
            raise ApiError(500, "Internal Server Error: fake closing")
        for upload in files.values():
            if len(upload.data) > UPLOAD_MAX_BYTES:
                raise ApiError(413, "Request Entity Too Large")
            size = image_size(upload.data) if upload.data else None
            upload.width, upload.height = size if size else (None, None)
        return await self._method_table[method](params, files)

    async def _download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] not in self.tokens:
            return self._error(ApiError(401, "Unauthorized"))
        for upload in self.files.values():
            if f"files/{upload.file_id}" == request.match_info["path"]:
                return web.Response(body=upload.data, content_type="application/octet-stream")
        return self._error(ApiError(404, "Not Found"))
