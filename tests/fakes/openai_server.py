"""A loopback fake of the OpenAI API (chat completions, image generations, variations and
edits, models).

Variations (POST /v1/images/variations, multipart, dall-e-2 only) need a square PNG under
4 MB in `image`; edits (POST /v1/images/edits, multipart) take `image` (or `image[]`) and a
`prompt`; gpt-image models answer base64 and refuse `response_format`, as for generations.
Uploaded files are kept byte for byte in `LoggedRequest.files`.

It speaks the real wire shapes and limits, logs what it receives, and can be told to be slow,
to fail the next requests (429 with Retry-After, 500, hang, malformed JSON) or to answer chat
calls with scripted content. Used by tests and by bench/ scripts:

    async with FakeOpenAI(api_key="sk-test", chat_latency=0.3) as fake:
        client = AsyncOpenAI(api_key="sk-test", base_url=fake.base_url)
"""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
import json
import math
import re
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.images_form import edit_problem, read_form, variation_problem
from tests.fakes.loopback import LoopbackServer

INVALID = "invalid_request_error"
POLICY_MESSAGE = (
    "Your request was rejected as a result of our safety system. Your prompt may contain text "
    "that is not allowed by our safety system."
)
CHAT_REFUSAL = "I'm sorry, but I can't help with that request."
# size list, max n, accepts response_format, prompt limit, returns revised_prompt
IMAGE_MODELS: dict[str, tuple[tuple[str, ...], int, bool, int, bool]] = {
    "dall-e-2": (("256x256", "512x512", "1024x1024"), 10, True, 1000, False),
    "dall-e-3": (("1024x1024", "1792x1024", "1024x1792"), 1, True, 4000, True),
    "gpt-image-1": (("1024x1024", "1536x1024", "1024x1536", "auto"), 10, False, 32000, False),
    "gpt-image-1-mini": (("1024x1024", "1536x1024", "1024x1536", "auto"), 10, False, 32000, False),
    "gpt-image-1.5": (("1024x1024", "1536x1024", "1024x1536", "auto"), 10, False, 32000, False),
}
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
class FakeOpenAI(LoopbackServer):
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

    async def _admit(self, request: web.Request) -> tuple[Any, web.StreamResponse | None]:
        """Log the request, check auth and JSON, and play any scripted failure."""
        try:
            body = await request.json() if request.can_read_body else None
        except ValueError:
            body = None
        auth = request.headers.get("Authorization", "")
        authorized = self.api_key is None or auth == f"Bearer {self.api_key}"
        headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        self.requests.append(LoggedRequest(request.method, request.path, body, headers, authorized))
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

    # ------------------------------------------------------------------ images

    async def _images(self, request: web.Request) -> web.StreamResponse:
        body, early = await self._admit(request)
        if early is not None:
            return early
        model = body.get("model") or "dall-e-2"
        prompt = body.get("prompt") or ""
        rules = IMAGE_MODELS.get(model) or ((), 10, True, 32000, False)
        size = body.get("size") or ("auto" if model.startswith("gpt-image") else "1024x1024")
        n = body.get("n", 1)
        response_format = body.get("response_format")
        problem = _image_problem(body, model, rules, size, n, self.accept_any_image_model)
        if problem:
            return self._error(400, problem[0], param=problem[1], code=problem[2])
        _, _, takes_format, _, revises = rules
        if any(word.lower() in prompt.lower() for word in self.refusal_words):
            return self._error(400, POLICY_MESSAGE, code="content_policy_violation")
        if self.image_latency:
            await asyncio.sleep(self.image_latency)
        width, height = (1024, 1024) if size == "auto" else map(int, str(size).split("x"))
        use_url = (takes_format and response_format in (None, "url")) or self.force_image_urls
        data = []
        for index in range(n):
            png = _png(width, height, f"{prompt}#{index}")
            item: dict[str, Any] = {}
            if use_url:
                name = f"img-{next(self._ids)}.png"
                self.files[name] = png
                item["url"] = f"{self.root_url}/files/{name}"
            else:
                item["b64_json"] = base64.b64encode(png).decode()
            if revises:
                item["revised_prompt"] = f"A detailed rendering of: {prompt[:200]}"
            data.append(item)
        answer: dict[str, Any] = {"created": int(time.time()), "data": data}
        if model.startswith("gpt-image"):
            tokens = math.ceil(len(prompt) / 4)
            answer.update(
                background="opaque",
                output_format="png",
                quality="medium",
                size=f"{width}x{height}",
                usage={
                    "input_tokens": tokens,
                    "output_tokens": 1056 * n,
                    "total_tokens": tokens + 1056 * n,
                    "input_tokens_details": {"text_tokens": tokens, "image_tokens": 0},
                },
            )
        return web.json_response(answer)

    async def _image_form(self, request: web.Request) -> web.StreamResponse:
        """/images/variations and /images/edits: multipart, the picture in `image`."""
        auth = request.headers.get("Authorization", "")
        authorized = self.api_key is None or auth == f"Bearer {self.api_key}"
        fields, files = await read_form(request)
        headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        self.requests.append(
            LoggedRequest(request.method, request.path, fields, headers, authorized, files)
        )
        if not authorized:
            return self._error(401, "Incorrect API key provided.", code="invalid_api_key")
        failure = next((f for f in self._failures if not f.path or f.path in request.path), None)
        if failure is not None:
            self._failures.remove(failure)
            return await self._fail(failure)
        edit = request.path.endswith("/edits")
        model = fields.get("model") or "dall-e-2"
        check = edit_problem if edit else variation_problem
        problem = check(fields, files, model, IMAGE_MODELS, self.accept_any_image_model)
        if problem:
            return self._error(400, problem[0], param=problem[1], code=problem[2])
        prompt = fields.get("prompt", "")
        if edit and any(word.lower() in prompt.lower() for word in self.refusal_words):
            return self._error(400, POLICY_MESSAGE, code="content_policy_violation")
        if self.image_latency:
            await asyncio.sleep(self.image_latency)
        size = fields.get("size") or "1024x1024"
        width, height = (1024, 1024) if size == "auto" else map(int, size.split("x"))
        source = files.get("image") or files.get("image[]") or b""
        key = f"{prompt}#{zlib.crc32(source)}"
        n = int(fields.get("n") or 1)
        b64 = model.startswith("gpt-image") or fields.get("response_format") == "b64_json"
        data = []
        for index in range(n):
            png = _png(width, height, f"{key}#{index}")
            if b64:
                data.append({"b64_json": base64.b64encode(png).decode()})
            else:
                name = f"img-{next(self._ids)}.png"
                self.files[name] = png
                data.append({"url": f"{self.root_url}/files/{name}"})
        return web.json_response({"created": int(time.time()), "data": data})

    async def _file(self, request: web.Request) -> web.StreamResponse:
        data = self.files.get(request.match_info["name"])
        if data is None:
            return web.Response(status=404, text="not found")
        return web.Response(body=data, content_type="image/png")

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


def _image_problem(
    body: dict, model: str, rules: tuple, size: Any, n: Any, accept_any: bool
) -> tuple[str, str | None, str | None] | None:
    """(message, param, code) of the 400 the real API gives this request, or None."""
    sizes, max_n, takes_format, prompt_limit, _ = rules
    prompt, response_format = body.get("prompt"), body.get("response_format")
    if not isinstance(prompt, str) or not prompt.strip():
        return "Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter"
    if model not in IMAGE_MODELS and not accept_any:
        return f"The model '{model}' does not exist.", "model", "model_not_found"
    if response_format is not None and not takes_format:
        return "Unknown parameter: 'response_format'.", "response_format", "unknown_parameter"
    if response_format not in (None, "url", "b64_json"):
        message = f"'{response_format}' is not one of ['url', 'b64_json'] - 'response_format'"
        return message, "response_format", None
    if sizes and size not in sizes:
        allowed = ", ".join(f"'{s}'" for s in sizes)
        return f"Invalid value: '{size}'. Supported values are: {allowed}.", "size", "invalid_value"
    if not sizes and not re.fullmatch(r"\d{2,5}x\d{2,5}", str(size)):
        return f"Invalid size '{size}'.", "size", "invalid_value"
    if model == "dall-e-3" and n != 1:
        return "You must provide n=1 for this model.", "n", None
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= max_n:
        message = f"Invalid 'n': expected a value from 1 to {max_n}, but got {n} instead."
        return message, "n", "integer_above_max_value"
    if len(prompt) > prompt_limit:
        message = (
            f"Invalid 'prompt': string too long. Expected a string with maximum length "
            f"{prompt_limit}, but got a string with length {len(prompt)} instead."
        )
        return message, "prompt", "string_above_max_length"
    return None


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


def _png(width: int, height: int, key: str) -> bytes:
    """A real PNG of the requested size, its colour derived from the prompt."""
    from PIL import Image

    seed = zlib.crc32(key.encode())
    colour = (seed & 0xFF, (seed >> 8) & 0xFF, (seed >> 16) & 0xFF)
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()
