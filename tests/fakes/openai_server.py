"""A loopback fake of the OpenAI API (chat completions, image generations, variations and
edits, models).

Variations (POST /v1/images/variations, multipart, dall-e-2 only) need a square PNG under
4 MB in `image`; edits (POST /v1/images/edits, multipart) take `image` (or `image[]`) and a
`prompt`; gpt-image models answer base64 and refuse `response_format`, as for generations.
Uploaded files are kept byte for byte in `LoggedRequest.files`. The image routes are in
openai_image_routes.py.

It speaks the real wire shapes and limits, logs what it receives, and can be told to be slow,
to fail the next requests (429 with Retry-After, 500, hang, malformed JSON) or to answer chat
calls with scripted content. Used by tests and by bench/ scripts:

    async with FakeOpenAI(api_key="sk-test", chat_latency=0.3) as fake:
        client = AsyncOpenAI(api_key="sk-test", base_url=fake.base_url)
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackServer
from tests.fakes.openai_image_routes import IMAGE_MODELS, POLICY_MESSAGE, ImageRoutes

INVALID = "invalid_request_error"
CHAT_REFUSAL = "I'm sorry, but I can't help with that request."
COUNT_PATTERN = re.compile(r"\b(\d{1,3})\s+(?:prompt\s+)?specs?\b", re.IGNORECASE)
BRIEF_PATTERN = re.compile(r"^\s*Brief\s+\d+\s*[:.]\s*(.+)$", re.IGNORECASE | re.MULTILINE)
WORD_PATTERN = re.compile(r"[a-z][a-z-]{3,}")


@dataclass
class LoggedRequest:
    """One request the fake received (the Authorization header is never kept)."""

    method: str
    path: str
    json: Any
    headers: dict[str, str]
    authorized: bool
    files: dict[str, bytes] = field(default_factory=dict)  # multipart uploads, byte for byte


@dataclass
class Refusal:
    """A scripted chat answer: the model refuses (structured-output `refusal` field)."""

    message: str = CHAT_REFUSAL


@dataclass
class Failure:
    """A scripted failure for the next matching request."""

    kind: str  # "429", "500", "hang", "malformed", "policy"
    retry_after: float | None = None
    path: str | None = None  # only requests whose path contains this


@dataclass(eq=False)
class FakeOpenAI(ImageRoutes, LoopbackServer):
    """The fake server; `async with` starts it on 127.0.0.1 at a random port."""

    api_key: str | None = None  # when set, requests need `Authorization: Bearer <key>`
    chat_latency: float = 0.0
    image_latency: float = 0.0
    reject_json_schema: bool = False  # 400 on response_format json_schema, like older servers
    reject_json_object: bool = False  # 400 on response_format json_object too
    fence_plain_answers: bool = True  # plain-mode answers come in a ```json fence with chatter
    accept_any_image_model: bool = False  # LocalAI-like: unknown models take any WxH size
    force_image_urls: bool = False  # answer URLs even when b64_json was asked for
    refusal_words: tuple[str, ...] = ("forbidden",)
    hang_seconds: float = 30.0
    chat_models: tuple[str, ...] = ("gpt-4o-mini", "gpt-4.1-mini", "gpt-5-mini")
    requests: list[LoggedRequest] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    _replies: deque = field(default_factory=deque)
    _failures: deque = field(default_factory=deque)
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    in_flight: int = 0  # chat and image requests being answered right now
    max_in_flight: int = 0  # the most that were ever answered at once

    # ------------------------------------------------------------------ lifecycle

    shutdown_timeout = 0.5

    def __post_init__(self) -> None:
        LoopbackServer.__init__(self)

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/images/generations", self._images)
        app.router.add_post("/v1/images/variations", self._image_form)
        app.router.add_post("/v1/images/edits", self._image_form)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/files/{name}", self._file)
        app.middlewares.append(self._count_in_flight)
        return app

    async def close(self) -> None:
        """Stop serving; hung handlers are released first (the same as stop())."""
        await self.stop()

    @property
    def root_url(self) -> str:
        return self.url

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    @web.middleware
    async def _count_in_flight(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await handler(request)
        finally:
            self.in_flight -= 1

    # ------------------------------------------------------------------ scripting

    def queue_reply(self, *contents: str | dict | list | Refusal) -> None:
        """Answer the next chat calls with these contents (str raw, dict/list as JSON)."""
        self._replies.extend(contents)

    def fail_next(
        self,
        kind: str,
        times: int = 1,
        *,
        retry_after: float | None = None,
        path: str | None = None,
    ) -> None:
        """Fail the next `times` requests (optionally only those whose path contains `path`)."""
        if kind not in ("429", "500", "hang", "malformed", "policy"):
            raise ValueError(f"unknown failure kind {kind!r}")
        self._failures.extend(Failure(kind, retry_after, path) for _ in range(times))

    def requests_to(self, path: str) -> list[LoggedRequest]:
        """The logged requests whose path ends with `path`."""
        return [r for r in self.requests if r.path.endswith(path)]

    @property
    def chat_requests(self) -> list[LoggedRequest]:
        return self.requests_to("/chat/completions")

    @property
    def image_requests(self) -> list[LoggedRequest]:
        return self.requests_to("/images/generations")

    # ------------------------------------------------------------------ plumbing

    @staticmethod
    def _error(
        status: int,
        message: str,
        *,
        type_: str = INVALID,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
        return web.json_response(body, status=status, headers=headers)

    def _log(
        self,
        request: web.Request,
        body: Any,
        headers: dict[str, str],
        authorized: bool,
        files: dict[str, bytes] | None = None,
    ) -> None:
        """Keep what was asked (never the Authorization header: `headers` come without it)."""
        logged = LoggedRequest(request.method, request.path, body, headers, authorized)
        logged.files = files or {}
        self.requests.append(logged)

    async def _admit(self, request: web.Request) -> tuple[Any, web.StreamResponse | None]:
        """Log the request, check auth and JSON, and play any scripted failure."""
        try:
            body = await request.json() if request.can_read_body else None
        except ValueError:
            body = None
        auth = request.headers.get("Authorization", "")
        authorized = self.api_key is None or auth == f"Bearer {self.api_key}"
        headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        self._log(request, body, headers, authorized)
        if not authorized:
            # Some compatible servers echo the whole key; the client must scrub it.
            given = auth.removeprefix("Bearer ").strip()
            return body, self._error(
                401,
                f"Incorrect API key provided: {given}. You can find your API key in your "
                "account settings.",
                code="invalid_api_key",
            )
        failure = next((f for f in self._failures if not f.path or f.path in request.path), None)
        if failure is not None:
            self._failures.remove(failure)
            return body, await self._fail(failure)
        if request.method == "POST" and not isinstance(body, dict):
            return body, self._error(
                400,
                "We could not parse the JSON body of your request. The OpenAI API expects a "
                "JSON payload.",
            )
        return body, None

    async def _fail(self, failure: Failure) -> web.StreamResponse:
        headers = {}
        if failure.retry_after is not None:
            headers["Retry-After"] = f"{failure.retry_after:g}"
        if failure.kind == "429":
            return self._error(
                429,
                "Rate limit reached for requests. Please try again in a moment.",
                type_="requests",
                code="rate_limit_exceeded",
                headers=headers,
            )
        if failure.kind == "500":
            return self._error(
                500,
                "The server had an error while processing your request. Sorry about that!",
                type_="server_error",
                headers=headers,
            )
        if failure.kind == "policy":
            return self._error(400, POLICY_MESSAGE, code="content_policy_violation")
        if failure.kind == "hang":
            try:
                await asyncio.wait_for(self.closing.wait(), self.hang_seconds)
            except TimeoutError:
                pass
            return self._error(504, "hung", type_="server_error")
        return web.Response(
            text='{"id": "chatcmpl-broken", "choices": [', content_type="application/json"
        )

    # ------------------------------------------------------------------ chat

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body, early = await self._admit(request)
        if early is not None:
            return early
        messages = body.get("messages")
        if not body.get("model"):
            return self._error(400, "you must provide a model parameter", param="model")
        if not isinstance(messages, list) or not messages:
            return self._error(
                400, "Invalid 'messages': empty array.", param="messages", code="empty_array"
            )
        mode = (body.get("response_format") or {}).get("type", "text")
        if mode == "json_schema" and (self.reject_json_schema or self.reject_json_object):
            return self._error(
                400,
                "Invalid parameter: 'response_format' of type 'json_schema' is not supported "
                "with this model.",
                param="response_format",
            )
        if mode == "json_object" and self.reject_json_object:
            return self._error(
                400,
                "'response_format.type' must be 'text'",
                param="response_format",
            )
        if mode == "json_object" and "json" not in json.dumps(messages).lower():
            return self._error(
                400,
                "'messages' must contain the word 'json' in some form, to use 'response_format' "
                "of type 'json_object'.",
                param="messages",
            )
        if self.chat_latency:
            await asyncio.sleep(self.chat_latency)
        refusal = None
        if self._replies:
            scripted = self._replies.popleft()
            if isinstance(scripted, Refusal):
                content, refusal = None, scripted.message
            elif isinstance(scripted, str):
                content = scripted
            else:
                content = json.dumps(scripted)
        else:
            content = json.dumps(self._invent(messages, body.get("response_format")))
            if mode == "text" and self.fence_plain_answers:
                content = f"Sure! Here are the specs:\n\n```json\n{content}\n```\nEnjoy."
        prompt_text = "".join(_text_of(m.get("content")) for m in messages if isinstance(m, dict))
        prompt_tokens = math.ceil(len(prompt_text) / 4)
        completion_tokens = math.ceil(len(content or refusal or "") / 4)
        return web.json_response(
            {
                "id": f"chatcmpl-{next(self._ids)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content, "refusal": refusal},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
                "system_fingerprint": "fp_fake",
            }
        )

    def _invent(self, messages: list, response_format: dict | None) -> Any:
        """Valid spec JSON for however many specs the last brief asked for."""
        users = [_text_of(m.get("content")) for m in messages if m.get("role") == "user"]
        last = users[-1] if users else ""
        count = next(
            (int(m.group(1)) for t in reversed(users) for m in [COUNT_PATTERN.search(t)] if m), 1
        )
        briefs_text = next((t for t in reversed(users) if BRIEF_PATTERN.search(t)), last)
        briefs = BRIEF_PATTERN.findall(briefs_text) or [last]
        specs = [_spec_for(briefs[i % len(briefs)], i) for i in range(max(1, count))]
        schema = json.dumps((response_format or {}).get("json_schema") or {})
        wants_list = '"specs"' in schema or "specs" in last.lower()
        if "description" in last.lower() and "rewrite" in last.lower():
            return {"description": specs[0]["description"], "metatags": specs[0]["metatags"]}
        return {"specs": specs} if wants_list else specs[0]

    async def _models(self, request: web.Request) -> web.StreamResponse:
        _, early = await self._admit(request)
        if early is not None:
            return early
        names = [*self.chat_models, *IMAGE_MODELS]
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {"id": n, "object": "model", "created": 1700000000, "owned_by": "openai"}
                    for n in names
                ],
            }
        )


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _spec_for(brief: str, index: int) -> dict:
    """A plausible spec built from a brief's `key: value; ...` fields."""
    fields = dict(part.split(": ", 1) for part in brief.split("; ") if ": " in part)
    scene = fields.get("scene") or fields.get("theme the user asked for") or brief.strip()
    extras = ", ".join(filter(None, (fields.get("style"), fields.get("elements"))))
    description = f"{scene[:1].upper()}{scene[1:]}" + (f", {extras}" if extras else "") + "."
    words = list(dict.fromkeys(WORD_PATTERN.findall(f"{scene} {extras}".lower())))
    tags = (words + ["fake", "render", "scene", "detail", "light", "mood", "colour"])[:8]
    return {
        "title": f"{' '.join(words[:4] or ['untitled']).title()} {index + 1}",
        "description": description[:1000],
        "metatags": tags,
    }
