"""The `stability` provider: Stability AI's hosted REST API.

v2beta Stable Image (core, ultra, sd3 family) takes multipart forms and renders aspect ratios at
about one megapixel; the v1 SDXL engines take JSON and a fixed list of sizes. One request per
image, so every image keeps its own seed.

Vary is v2beta image-to-image: the sd3 endpoint with `mode=image-to-image`, `image` and
`strength`, or ultra with `image` and `strength`. Stable Image Core takes no image, so a core
provider varies with sd3.5-large (`vary_model` says so). Upscale is the v2beta fast upscaler
(see stability_upscale.py). The v1 engines do neither here.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import aiohttp

from imagebot.providers.base import (
    BadResponse,
    ConfigError,
    FixedSizes,
    FreeSizes,
    NeedsKey,
    ProviderError,
    Refused,
    RenderedImage,
    RenderRequest,
    Size,
    SizeRule,
    Unavailable,
    UpscaledImage,
)
from imagebot.providers.http_errors import request_json, scrub
from imagebot.providers.multipart import multipart
from imagebot.providers.stability_upscale import FACTOR, FAST_UPSCALE_PATH, finish, prepare

if TYPE_CHECKING:
    from imagebot.providers.catalog import ProviderOptions

PROVIDER_ID = "stability"
KEY_VAR = "STABILITY_API_KEY"
DEFAULT_MODEL = "core"
TIMEOUT = 180.0
# What each v2beta aspect ratio renders at (the SD3 family's ~1 MP buckets).
ASPECT_RATIOS: dict[str, Size] = {
    "21:9": Size(1536, 640),
    "16:9": Size(1344, 768),
    "3:2": Size(1216, 832),
    "5:4": Size(1088, 896),
    "1:1": Size(1024, 1024),
    "4:5": Size(896, 1088),
    "2:3": Size(832, 1216),
    "9:16": Size(768, 1344),
    "9:21": Size(640, 1536),
}
SDXL_SIZES = tuple(
    Size(w, h)
    for w, h in (
        (1024, 1024), (1152, 896), (1216, 832), (1344, 768), (1536, 640),
        (640, 1536), (768, 1344), (832, 1216), (896, 1152),
    )
)  # fmt: skip
SD3_MODELS = (
    "sd3.5-large", "sd3.5-large-turbo", "sd3.5-medium", "sd3.5-flash",
    "sd3-large", "sd3-large-turbo", "sd3-medium",
)  # fmt: skip
V1_ENGINE = re.compile(r"^stable-diffusion-[a-z0-9.-]+$")
# A1111 sampler names (what role packs use) onto the v1 API's enum.
V1_SAMPLERS = {
    "euler a": "K_EULER_ANCESTRAL",
    "euler": "K_EULER",
    "dpm++ 2m": "K_DPMPP_2M",
    "dpm++ 2s a": "K_DPMPP_2S_ANCESTRAL",
    "dpm2": "K_DPM_2",
    "dpm2 a": "K_DPM_2_ANCESTRAL",
    "heun": "K_HEUN",
    "lms": "K_LMS",
    "ddim": "DDIM",
    "ddpm": "DDPM",
}
VARY_MODEL_FOR_CORE = "sd3.5-large"  # core has no image-to-image; the nearest model that has
DEFAULT_STRENGTH = 0.55  # SPEC §6: a variation moves this far from its image
SEED_LIMIT = 4294967294  # v2beta's largest seed; 0 asks the service for a random one
WAIT_IN_MESSAGE = re.compile(r"timed out for (\d+) seconds")


def _clamp(value: Any, low: float, high: float) -> float:
    return max(low, min(high, float(value)))


def _v1_sampler(name: str | None) -> str | None:
    if not name:
        return None
    if name.upper() in V1_SAMPLERS.values():
        return name.upper()
    base = re.sub(r"\s+(karras|exponential|sgm uniform)$", "", name.strip(), flags=re.I)
    return V1_SAMPLERS.get(base.lower())


class StabilityProvider:
    """Stability AI: Stable Image Core (default), Ultra, SD3.x, or a v1 SDXL engine."""

    provider_id: ClassVar[str] = PROVIDER_ID
    offline: ClassVar[bool] = False

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        api_key: str,
        host: str = "https://api.stability.ai",
        model: str = DEFAULT_MODEL,
        max_concurrency: int = 4,
        timeout: float = TIMEOUT,
        attempts: int = 3,
    ):
        if not api_key:
            raise ConfigError(f"the stability provider needs {KEY_VAR}")
        model = (model or DEFAULT_MODEL).strip()
        if model not in ("core", "ultra", "sd3", *SD3_MODELS) and not V1_ENGINE.match(model):
            raise ConfigError(
                f"STABILITY_MODEL must be core, ultra, sd3, one of {', '.join(SD3_MODELS)}, or a "
                f"v1 engine such as stable-diffusion-xl-1024-v1-0; got {model!r}"
            )
        self._session = session
        self._key = api_key
        self._host = host.rstrip("/")
        self._model = model
        self._concurrency = max_concurrency
        self._timeout = timeout
        self._attempts = attempts

    @classmethod
    def from_options(
        cls, options: ProviderOptions, session: aiohttp.ClientSession
    ) -> StabilityProvider:
        """Build from STABILITY_API_KEY, STABILITY_API_HOST and STABILITY_MODEL."""
        if not options.stability_api_key:
            raise ConfigError(f"the stability provider needs {KEY_VAR}")
        return cls(
            session,
            api_key=options.stability_api_key,
            host=options.stability_api_host,
            model=options.stability_model or DEFAULT_MODEL,
            max_concurrency=options.provider_concurrency,
        )

    @property
    def model(self) -> str:
        return self._model

    @property
    def max_images_per_call(self) -> int:
        return 1

    @property
    def max_concurrency(self) -> int:
        return self._concurrency

    @property
    def is_v1(self) -> bool:
        return bool(V1_ENGINE.match(self._model))

    @property
    def accepts_init_image(self) -> bool:
        """Vary works on every v2beta model (core through sd3.5-large); not on v1 engines."""
        return not self.is_v1

    @property
    def vary_model(self) -> str:
        """The model a variation is rendered with: the provider's, except core's stand-in."""
        return VARY_MODEL_FOR_CORE if self._model == "core" else self._model

    def sizes(self) -> SizeRule:
        if not self.is_v1:
            return FixedSizes(tuple(ASPECT_RATIOS.values()))
        if "xl-1024" in self._model:
            return FixedSizes(SDXL_SIZES)
        # the SD 1.6 engine: multiples of 64, 320 to 1536 a side
        return FreeSizes(step=64, min_side=320, max_side=1536, max_pixels=1536 * 1536)

    async def aclose(self) -> None:
        """Nothing to release: the HTTP session belongs to the caller."""

    async def render(self, request: RenderRequest) -> list[RenderedImage]:
        """One generation per seed, in order."""
        images = []
        for seed in request.seeds:
            images.append(await self._render_one(request, seed))
        return images

    async def _render_one(self, request: RenderRequest, seed: int) -> RenderedImage:
        try:
            if request.init_image is not None:
                return await self._vary(request, seed)
            if self.is_v1:
                return await self._v1(request, seed)
            return await self._v2beta(request, seed)
        except ProviderError as exc:
            raise self._explained(exc) from exc

    # ------------------------------------------------------------------ v2beta

    def form(self, request: RenderRequest, seed: int) -> dict[str, str]:
        """The v2beta multipart fields for one image."""
        ratio = next(r for r, s in ASPECT_RATIOS.items() if s == self._ratio_size(request.size))
        fields = {
            "prompt": request.prompt,
            "aspect_ratio": ratio,
            "seed": str(seed % (SEED_LIMIT + 1)) if seed >= 0 else "0",
            "output_format": "png",
        }
        turbo = "turbo" in self._model
        if request.negative_prompt and not turbo:
            fields["negative_prompt"] = request.negative_prompt
        settings: Mapping[str, Any] = request.settings or {}
        if self._model in SD3_MODELS or self._model == "sd3":
            fields["mode"] = "text-to-image"
            if self._model != "sd3":
                fields["model"] = self._model
            if settings.get("cfg_scale") is not None and not turbo:
                fields["cfg_scale"] = f"{_clamp(settings['cfg_scale'], 1, 10):g}"
        if settings.get("style_preset"):
            fields["style_preset"] = str(settings["style_preset"])
        return fields

    @staticmethod
    def _ratio_size(size: Size) -> Size:
        """The aspect-ratio bucket a size belongs to (sizes are fitted already, usually exact)."""
        return FixedSizes(tuple(ASPECT_RATIOS.values())).fit(size)

    async def _v2beta(self, request: RenderRequest, seed: int) -> RenderedImage:
        service = "sd3" if self._model in SD3_MODELS or self._model == "sd3" else self._model
        body, content_type = multipart(self.form(request, seed))
        answer = await self._post(
            f"/v2beta/stable-image/generate/{service}", data=body, content_type=content_type
        )
        return self._image_of(answer, seed)

    def vary_form(self, request: RenderRequest, seed: int) -> tuple[str, dict[str, str]]:
        """(service, text fields) of the v2beta image-to-image request for one image."""
        model = self.vary_model
        strength = DEFAULT_STRENGTH if request.strength is None else request.strength
        fields = {
            "prompt": request.prompt,
            "strength": f"{_clamp(strength, 0, 1):g}",
            "seed": str(seed % (SEED_LIMIT + 1)) if seed >= 0 else "0",
            "output_format": "png",
        }
        turbo = "turbo" in model
        if request.negative_prompt and not turbo:
            fields["negative_prompt"] = request.negative_prompt
        if model == "ultra":
            return "ultra", fields  # ultra: an optional image with its strength, no mode
        fields["mode"] = "image-to-image"  # the output takes the image's aspect ratio
        if model != "sd3":
            fields["model"] = model
        cfg = (request.settings or {}).get("cfg_scale")
        if cfg is not None and not turbo:
            fields["cfg_scale"] = f"{_clamp(cfg, 1, 10):g}"
        return "sd3", fields

    async def _vary(self, request: RenderRequest, seed: int) -> RenderedImage:
        if self.is_v1:
            raise ProviderError(
                PROVIDER_ID,
                f"cannot vary with {self._model}: Stability's v1 engines take no image here; "
                "set STABILITY_MODEL to core, ultra or an sd3 model",
            )
        assert request.init_image is not None
        service, fields = self.vary_form(request, seed)
        kind = "jpeg" if request.init_image.startswith(b"\xff\xd8") else "png"
        image = (f"image.{kind}", request.init_image, f"image/{kind}")
        body, content_type = multipart(fields, {"image": image})
        answer = await self._post(
            f"/v2beta/stable-image/generate/{service}", data=body, content_type=content_type
        )
        return self._image_of(answer, seed)

    async def upscale(self, image: bytes, scale: int = 2) -> UpscaledImage:
        """`image` at `scale` times its width and height, by Stability's fast upscaler (4x),
        fitted to its size rules first and resized to exactly `scale`x after."""
        prepared = prepare(image)
        body, content_type = multipart(
            {"output_format": "png"}, {"image": ("image.png", prepared.png, "image/png")}
        )
        try:
            answer = await self._post(FAST_UPSCALE_PATH, data=body, content_type=content_type)
            upscaled = self._image_of(answer, None).data
        except ProviderError as exc:
            raise self._explained(exc) from exc
        data, width, height = finish(upscaled, prepared, scale)
        name = "stability fast upscale" + ("" if scale == FACTOR else f" (4x, resized to {scale}x)")
        return UpscaledImage(data=data, width=width, height=height, upscaler=name)

    def _image_of(self, answer: Any, seed: int | None) -> RenderedImage:
        """The image of a v2beta JSON answer (`image`, `finish_reason`, `seed`)."""
        if not isinstance(answer, dict) or not isinstance(answer.get("image"), str):
            raise BadResponse(PROVIDER_ID, "the answer had no image")
        if answer.get("finish_reason") == "CONTENT_FILTERED":
            raise Refused(PROVIDER_ID, "the image was withheld by Stability's content filter")
        return RenderedImage(data=self._decode(answer["image"]), seed=answer.get("seed", seed))

    # ------------------------------------------------------------------ v1

    def v1_body(self, request: RenderRequest, seed: int) -> dict[str, Any]:
        """The v1 text-to-image JSON for one image."""
        settings: Mapping[str, Any] = request.settings or {}
        prompts = [{"text": request.prompt, "weight": 1}]
        if request.negative_prompt:
            prompts.append({"text": request.negative_prompt, "weight": -1})
        body: dict[str, Any] = {
            "text_prompts": prompts,
            "width": request.size.width,
            "height": request.size.height,
            "samples": 1,
            "seed": seed % (SEED_LIMIT + 2) if seed >= 0 else 0,
        }
        if settings.get("cfg_scale") is not None:
            body["cfg_scale"] = _clamp(settings["cfg_scale"], 0, 35)
        if settings.get("steps") is not None:
            body["steps"] = int(_clamp(settings["steps"], 10, 50))
        sampler = _v1_sampler(settings.get("sampler_name") or settings.get("sampler"))
        if sampler:
            body["sampler"] = sampler
        if settings.get("style_preset"):
            body["style_preset"] = str(settings["style_preset"])
        return body

    async def _v1(self, request: RenderRequest, seed: int) -> RenderedImage:
        answer = await self._post(
            f"/v1/generation/{self._model}/text-to-image", json=self.v1_body(request, seed)
        )
        artifacts = answer.get("artifacts") if isinstance(answer, dict) else None
        if not artifacts or not isinstance(artifacts[0], dict):
            raise BadResponse(PROVIDER_ID, "the answer had no image")
        artifact = artifacts[0]
        if artifact.get("finishReason") == "CONTENT_FILTERED":
            raise Refused(PROVIDER_ID, "the image was withheld by Stability's content filter")
        if artifact.get("finishReason") == "ERROR":
            raise BadResponse(PROVIDER_ID, "the generation failed on Stability's side")
        return RenderedImage(data=self._decode(artifact.get("base64")), seed=artifact.get("seed"))

    # ------------------------------------------------------------------ transport

    async def _post(self, path: str, *, content_type: str | None = None, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self._key}", "Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        return await request_json(
            self._session,
            "POST",
            f"{self._host}{path}",
            provider=PROVIDER_ID,
            timeout=self._timeout,
            attempts=self._attempts,
            headers=headers,
            **kwargs,
        )

    @staticmethod
    def _decode(data: Any) -> bytes:
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, TypeError, ValueError) as exc:
            raise BadResponse(PROVIDER_ID, "the image was not valid base64") from exc

    def _explained(self, exc: ProviderError) -> ProviderError:
        """Say what the user can do about it, and never echo the key."""
        message = scrub(exc.message, [self._key])
        if isinstance(exc, NeedsKey):
            return NeedsKey(PROVIDER_ID, f"Stability AI refused {KEY_VAR}: {message}")
        if type(exc) is ProviderError and "HTTP 402" in message:
            # Out of credits: no retry helps, but a fallback provider can take over.
            return Unavailable(PROVIDER_ID, f"out of credits (HTTP 402): {message}")
        if isinstance(exc, Unavailable) and exc.retry_after is None:
            wait = WAIT_IN_MESSAGE.search(message)
            return Unavailable(PROVIDER_ID, message, retry_after=float(wait[1]) if wait else None)
        return type(exc)(PROVIDER_ID, message, retry_after=exc.retry_after)
