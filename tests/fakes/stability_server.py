"""A loopback fake of Stability AI's REST API: v2beta stable-image generate (text-to-image and
image-to-image), v2beta fast upscale, and v1 generation.

Real shapes: v2beta takes multipart/form-data and answers {"image", "finish_reason", "seed"}
(or the bytes, with finish-reason and seed headers, for Accept: image/*); v1 takes JSON and
answers {"artifacts": [...]}. Errors are {"id", "name", "errors": [...]} (v2beta) or
{"id", "name", "message"} (v1): 401 unauthorized, 402 payment_required, 403 content_moderation,
400 bad_request / invalid_sdxl_v1_dimensions, 429 rate_limit_exceeded, 500.

Image-to-image: sd3 with `mode=image-to-image` needs the `image` file and a `strength` from 0
to 1 (and takes no aspect_ratio: the output keeps the image's shape); ultra takes an optional
`image` with its `strength`; core takes no image. Fast upscale takes an `image` of 32 to 1,536
pixels a side, 1,024 to 1,048,576 pixels in all, aspect 1:2.5 to 2.5:1, and answers it at 4x.
The rules are the documented ones; the error wording is ours, in the service's shape.

    async with FakeStability(api_key="sk-test", latency=0.5) as fake:
        provider = StabilityProvider(session, api_key="sk-test", host=fake.url)
"""

from __future__ import annotations

import asyncio
import base64
import io
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from PIL import Image

from tests.fakes.images_form import read_form
from tests.fakes.loopback import LoopbackServer
from tests.fakes.webui_server import make_png

ASPECT_SIZES = {
    "16:9": (1344, 768), "1:1": (1024, 1024), "21:9": (1536, 640), "2:3": (832, 1216),
    "3:2": (1216, 832), "4:5": (896, 1088), "5:4": (1088, 896), "9:16": (768, 1344),
    "9:21": (640, 1536),
}  # fmt: skip
SD3_MODELS = (
    "sd3.5-large", "sd3.5-large-turbo", "sd3.5-medium", "sd3.5-flash",
    "sd3-large", "sd3-large-turbo", "sd3-medium",
)  # fmt: skip
SDXL_SIZES = (
    (1024, 1024), (1152, 896), (1216, 832), (1344, 768), (1536, 640),
    (640, 1536), (768, 1344), (832, 1216), (896, 1152),
)  # fmt: skip
V1_ENGINES = ("stable-diffusion-xl-1024-v1-0", "stable-diffusion-v1-6")
V1_SAMPLERS = (
    "DDIM", "DDPM", "K_DPMPP_2M", "K_DPMPP_2S_ANCESTRAL", "K_DPM_2", "K_DPM_2_ANCESTRAL",
    "K_EULER", "K_EULER_ANCESTRAL", "K_HEUN", "K_LMS",
)  # fmt: skip
MODERATION = (
    "Your request was flagged by our content moderation system, as a result your request was "
    "denied and you were not charged."
)
NO_CREDITS = (
    "You lack sufficient credits to make this request.  Please purchase more credits at "
    "https://platform.stability.ai/account/credits and try again."
)
RATE_LIMITED = (
    "You have exceeded the rate limit of 150 requests within a 10 second period, and have been "
    "timed out for 60 seconds."
)


@dataclass
class LoggedRequest:
    """One request the fake received (the Authorization header is never kept)."""

    method: str
    path: str
    fields: dict[str, Any]  # form fields (v2beta) or the JSON body (v1)
    content_type: str
    accept: str
    authorized: bool
    files: dict[str, bytes] = field(default_factory=dict)  # uploaded parts, byte for byte


@dataclass(eq=False)
class FakeStability(LoopbackServer):
    """The fake server; `async with` starts it on 127.0.0.1 at a random port."""

    api_key: str = "sk-test"
    latency: float = 0.0
    credits: float = 1000.0
    moderated_words: tuple[str, ...] = ("forbidden",)  # 403 content_moderation
    filtered_words: tuple[str, ...] = ("blurme",)  # 200 with finish_reason CONTENT_FILTERED
    hang_seconds: float = 30.0
    requests: list[LoggedRequest] = field(default_factory=list)
    _failures: list[tuple[str, float | None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        LoopbackServer.__init__(self)

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=10 * 1024**2)
        app.router.add_post("/v2beta/stable-image/generate/{service}", self._v2beta)
        app.router.add_post("/v2beta/stable-image/upscale/fast", self._upscale_fast)
        app.router.add_post("/v1/generation/{engine}/text-to-image", self._v1)
        return app

    def fail_next(self, count: int = 1, kind: str = "429", retry_after: float | None = None):
        """The next `count` generations fail: "429", "500", "hang" or "malformed"."""
        if kind not in ("429", "500", "hang", "malformed"):
            raise ValueError(kind)
        self._failures.extend([(kind, retry_after)] * count)

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _v2_error(status: int, name: str, *errors: str) -> web.Response:
        return web.json_response({"id": uuid.uuid4().hex, "name": name, "errors": list(errors)},
                                 status=status)  # fmt: skip

    @staticmethod
    def _v1_error(status: int, name: str, message: str) -> web.Response:
        return web.json_response({"id": uuid.uuid4().hex, "name": name, "message": message},
                                 status=status)  # fmt: skip

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization", "") == f"Bearer {self.api_key}"

    async def _gate(self, request: web.Request, v1: bool, prompt: str) -> web.StreamResponse | None:
        """What every generation passes: key, failures, credits, moderation."""
        error = self._v1_error if v1 else self._v2_error
        if not self._authorized(request):
            return error(401, "unauthorized", "authorization: invalid or missing header value")
        if self._failures:
            kind, retry_after = self._failures.pop(0)
            if kind == "429":
                response = error(429, "rate_limit_exceeded", RATE_LIMITED)
                if retry_after is not None:
                    response.headers["Retry-After"] = str(int(retry_after))
                return response
            if kind == "500":
                response = error(500, "internal_error", "An unexpected server error has occurred.")
                if retry_after is not None:
                    response.headers["Retry-After"] = str(int(retry_after))
                return response
            if kind == "hang":
                try:
                    await asyncio.wait_for(self.closing.wait(), self.hang_seconds)
                except TimeoutError:
                    pass
                return error(500, "internal_error", "timed out")
            return web.Response(text='{"image": "iVBOR', content_type="application/json")
        if self.credits <= 0:
            return error(402, "payment_required", NO_CREDITS)
        if any(word in prompt.lower() for word in self.moderated_words):
            return error(403, "content_moderation", MODERATION)
        return None

    def _finish(self, prompt: str) -> str:
        filtered = any(word in prompt.lower() for word in self.filtered_words)
        return "CONTENT_FILTERED" if filtered else "SUCCESS"

    # ------------------------------------------------------------------ v2beta

    async def _v2beta(self, request: web.Request) -> web.StreamResponse:
        service = request.match_info["service"]
        content_type = request.headers.get("Content-Type", "")
        fields, files = await read_form(request)
        accept = request.headers.get("Accept", "image/*")
        self.requests.append(LoggedRequest("POST", request.path, fields, content_type, accept,
                                           self._authorized(request), files))  # fmt: skip
        if service not in ("core", "ultra", "sd3"):
            return self._v2_error(404, "not_found", f"{request.path} does not exist")
        if not content_type.startswith("multipart/form-data"):
            return self._v2_error(400, "bad_request", "content-type: must be multipart/form-data")
        prompt = fields.get("prompt", "")
        if denied := await self._gate(request, False, prompt):
            return denied
        problems = []
        if not 1 <= len(prompt) <= 10000:
            problems.append("prompt: must be between 1 and 10000 characters")
        if len(fields.get("negative_prompt", "")) > 10000:
            problems.append("negative_prompt: must be at most 10000 characters")
        ratio = fields.get("aspect_ratio", "1:1")
        if ratio not in ASPECT_SIZES:
            problems.append(f"aspect_ratio: must be one of {', '.join(ASPECT_SIZES)}")
        init, init_problems = self._init_image(service, fields, files)
        problems += init_problems
        seed_text = fields.get("seed", "0")
        if not seed_text.isdigit() or int(seed_text) > 4294967294:
            problems.append("seed: must be a number between 0 and 4294967294")
        output_format = fields.get("output_format", "png")
        if output_format not in ("png", "jpeg", "webp"):
            problems.append("output_format: must be one of png, jpeg, webp")
        if service == "sd3":
            if fields.get("model", "sd3.5-large") not in SD3_MODELS:
                problems.append(f"model: must be one of {', '.join(SD3_MODELS)}")
            if "cfg_scale" in fields and not 1 <= float(fields["cfg_scale"]) <= 10:
                problems.append("cfg_scale: must be between 1 and 10")
        if accept not in ("image/*", "application/json"):
            problems.append("accept: must be image/* or application/json")
        if problems:
            return self._v2_error(400, "bad_request", *problems)
        await asyncio.sleep(self.latency)
        self.credits -= {"core": 3, "ultra": 8, "sd3": 6.5}[service]
        seed = int(seed_text) or random.randrange(1, 4294967295)
        width, height = init if init else ASPECT_SIZES[ratio]
        return self._answer(make_png(width, height, seed), accept, self._finish(prompt), seed)

    @staticmethod
    def _answer(image: bytes, accept: str, finish: str, seed: int) -> web.Response:
        if accept == "application/json":
            body = {"image": base64.b64encode(image).decode(), "finish_reason": finish,
                    "seed": seed}  # fmt: skip
            return web.json_response(body)
        headers = {"finish-reason": finish, "seed": str(seed)}
        return web.Response(body=image, content_type="image/png", headers=headers)

    @staticmethod
    def _init_image(
        service: str, fields: dict[str, str], files: dict[str, bytes]
    ) -> tuple[tuple[int, int] | None, list[str]]:
        """The size of the image-to-image input, if any, and what is wrong with the request."""
        mode = fields.get("mode", "text-to-image")
        wants_image = (service == "sd3" and mode == "image-to-image") or (
            service == "ultra" and "image" in files
        )
        if service == "sd3" and mode not in ("text-to-image", "image-to-image"):
            return None, ["mode: must be one of text-to-image, image-to-image"]
        if service == "core" and ("image" in files or "strength" in fields):
            return None, ["image: core does not take an image; use sd3 or ultra"]
        if not wants_image:
            if "image" in files:
                return None, ["image: only allowed when mode is image-to-image"]
            return None, []
        problems = []
        if "image" not in files:
            problems.append("image: required when mode is image-to-image")
        try:
            strength = float(fields["strength"])
            if not 0 <= strength <= 1:
                problems.append("strength: must be between 0 and 1")
        except (KeyError, ValueError):
            problems.append("strength: required with an image, a number between 0 and 1")
        if service == "sd3" and "aspect_ratio" in fields:
            problems.append("aspect_ratio: not allowed in image-to-image mode")
        size = _size_of(files.get("image", b""))
        if "image" in files and (size is None or min(size) < 64):
            problems.append("image: must be a PNG, JPEG or WebP of at least 64 pixels a side")
        return size, problems

    # ------------------------------------------------------------------ fast upscale

    async def _upscale_fast(self, request: web.Request) -> web.StreamResponse:
        content_type = request.headers.get("Content-Type", "")
        fields, files = await read_form(request)
        accept = request.headers.get("Accept", "image/*")
        self.requests.append(LoggedRequest("POST", request.path, fields, content_type, accept,
                                           self._authorized(request), files))  # fmt: skip
        if not content_type.startswith("multipart/form-data"):
            return self._v2_error(400, "bad_request", "content-type: must be multipart/form-data")
        if denied := await self._gate(request, False, ""):
            return denied
        size = _size_of(files.get("image", b""))
        if size is None:
            return self._v2_error(400, "bad_request", "image: required, a PNG, JPEG or WebP")
        width, height = size
        problems = []
        if not (32 <= min(size) and max(size) <= 1536):
            problems.append(f"image: each side must be 32 to 1536 pixels; got {width}x{height}")
        if not 1024 <= width * height <= 1_048_576:
            problems.append(
                f"image: must have 1,024 to 1,048,576 pixels; got {width * height:,} pixels"
            )
        if max(size) / min(size) > 2.5:
            problems.append("image: aspect ratio must be between 1:2.5 and 2.5:1")
        if fields.get("output_format", "png") not in ("png", "jpeg", "webp"):
            problems.append("output_format: must be one of png, jpeg, webp")
        if problems:
            return self._v2_error(400, "bad_request", *problems)
        await asyncio.sleep(self.latency)
        self.credits -= 2
        with Image.open(io.BytesIO(files["image"])) as source:
            upscaled = source.convert("RGB").resize((width * 4, height * 4))
        buffer = io.BytesIO()
        upscaled.save(buffer, format="PNG", compress_level=1)
        return self._answer(buffer.getvalue(), accept, "SUCCESS", 0)

    # ------------------------------------------------------------------ v1

    async def _v1(self, request: web.Request) -> web.StreamResponse:
        engine = request.match_info["engine"]
        try:
            body = await request.json()
        except ValueError:
            body = None
        accept = request.headers.get("Accept", "application/json")
        self.requests.append(LoggedRequest("POST", request.path, body or {},
                                           request.headers.get("Content-Type", ""), accept,
                                           self._authorized(request)))  # fmt: skip
        if engine not in V1_ENGINES:
            return self._v1_error(404, "engine_not_found", f"engine {engine} not found")
        if not isinstance(body, dict):
            return self._v1_error(400, "bad_request", "body: must be a JSON object")
        prompts = body.get("text_prompts") or []
        positive = " ".join(p.get("text", "") for p in prompts if p.get("weight", 1) > 0)
        if denied := await self._gate(request, True, positive):
            return denied
        width, height = int(body.get("width", 1024)), int(body.get("height", 1024))
        if "xl-1024" in engine and (width, height) not in SDXL_SIZES:
            allowed = ", ".join(f"{w}x{h}" for w, h in SDXL_SIZES)
            return self._v1_error(
                400, "invalid_sdxl_v1_dimensions",
                f"for stable-diffusion-xl-1024-v1-0 the allowed dimensions are {allowed}, "
                f"but we received {width}x{height}",
            )  # fmt: skip
        checks = [
            (bool(prompts), "text_prompts: must contain at least one prompt"),
            (1 <= int(body.get("samples", 1)) <= 10, "samples: must be between 1 and 10"),
            (10 <= int(body.get("steps", 30)) <= 50, "steps: must be between 10 and 50"),
            (0 <= float(body.get("cfg_scale", 7)) <= 35, "cfg_scale: must be between 0 and 35"),
            (0 <= int(body.get("seed", 0)) <= 4294967295, "seed: must be between 0 and 4294967295"),
            (body.get("sampler", "K_DPMPP_2M") in V1_SAMPLERS, "sampler: not a valid sampler"),
        ]
        for ok, message in checks:
            if not ok:
                return self._v1_error(400, "bad_request", message)
        samples = int(body.get("samples", 1))
        await asyncio.sleep(self.latency * samples)
        self.credits -= 0.9 * samples
        first = int(body.get("seed", 0)) or random.randrange(1, 4294967295)
        finish = self._finish(positive)
        artifacts = [
            {
                "base64": base64.b64encode(make_png(width, height, first + i)).decode(),
                "seed": first + i,
                "finishReason": finish,
            }  # fmt: skip
            for i in range(samples)
        ]
        return web.json_response({"artifacts": artifacts})


def _size_of(data: bytes) -> tuple[int, int] | None:
    """Width and height of an uploaded image, or None when it is not one."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:  # noqa: BLE001 -- anything unreadable is "not an image" to the service
        return None
