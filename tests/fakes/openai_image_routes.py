"""The OpenAI fake's image routes: generations, variations and edits, and the files it serves.

A mixin of FakeOpenAI (openai_server.py), which holds the state, the auth check and the
scripted failures these routes share with the chat route. The real limits per model are in
IMAGE_MODELS; the multipart checks of variations and edits are in images_form.py.
"""

from __future__ import annotations

import asyncio
import base64
import io
import math
import re
import time
import zlib
from collections import deque
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.images_form import edit_problem, read_form, variation_problem

if TYPE_CHECKING:
    from tests.fakes.openai_server import Failure, LoggedRequest

POLICY_MESSAGE = (
    "Your request was rejected as a result of our safety system. Your prompt may contain text "
    "that is not allowed by our safety system."
)
# size list, max n, accepts response_format, prompt limit, returns revised_prompt
IMAGE_MODELS: dict[str, tuple[tuple[str, ...], int, bool, int, bool]] = {
    "dall-e-2": (("256x256", "512x512", "1024x1024"), 10, True, 1000, False),
    "dall-e-3": (("1024x1024", "1792x1024", "1024x1792"), 1, True, 4000, True),
    "gpt-image-1": (("1024x1024", "1536x1024", "1024x1536", "auto"), 10, False, 32000, False),
    "gpt-image-1-mini": (("1024x1024", "1536x1024", "1024x1536", "auto"), 10, False, 32000, False),
    "gpt-image-1.5": (("1024x1024", "1536x1024", "1024x1536", "auto"), 10, False, 32000, False),
}


class ImageRoutes:
    """POST /v1/images/generations, /variations, /edits and GET /files/{name}."""

    if TYPE_CHECKING:
        api_key: str | None
        image_latency: float
        accept_any_image_model: bool
        force_image_urls: bool
        refusal_words: tuple[str, ...]
        requests: list[LoggedRequest]
        files: dict[str, bytes]
        _failures: deque
        _ids: Any

        @property
        def root_url(self) -> str: ...
        def _error(self, status: int, message: str, **details: Any) -> web.Response: ...
        async def _admit(self, request: web.Request) -> tuple[Any, web.StreamResponse | None]: ...
        async def _fail(self, failure: Failure) -> web.StreamResponse: ...
        def _log(
            self,
            request: web.Request,
            body: Any,
            headers: dict[str, str],
            authorized: bool,
            files: dict[str, bytes] | None = None,
        ) -> None: ...

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
        self._log(request, fields, headers, authorized, files)
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


def _png(width: int, height: int, key: str) -> bytes:
    """A real PNG of the requested size, its colour derived from the prompt."""
    from PIL import Image

    seed = zlib.crc32(key.encode())
    colour = (seed & 0xFF, (seed >> 8) & 0xFF, (seed >> 16) & 0xFF)
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()
