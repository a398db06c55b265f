"""The `dalle` provider: the OpenAI Images API (DALL·E 2/3, GPT Image) and compatible servers.

Vary: dall-e-2 through `images.create_variation` (a square PNG under 4 MB; the prompt is not
sent, the endpoint takes none), GPT Image models through `images.edit` with the prompt (the
endpoint has no strength: the prompt alone steers how far it moves). Other models cannot vary.
There is no upscale endpoint: the caller resizes locally.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import openai
from PIL import Image

from imagebot.providers.base import (
    BadResponse,
    FixedSizes,
    ProviderError,
    RenderedImage,
    RenderRequest,
    Size,
    SizeRule,
)
from imagebot.providers.http_errors import request_bytes
from imagebot.providers.openai_sdk import error_for_openai, make_client

if TYPE_CHECKING:
    import aiohttp

    from imagebot.providers.catalog import ProviderOptions

PROVIDER = "dalle"
VARIATION_LIMIT = 4 * 1024 * 1024  # create_variation takes a square PNG under 4 MB


def can_vary(model: str) -> bool:
    """dall-e-2 has variations, GPT Image models have edits; nothing else takes an image."""
    name = model.lower()
    return name == "dall-e-2" or name.startswith("gpt-image")


def cannot_vary(model: str) -> str:
    """The one sentence a user gets for a Vary on a model that takes no image."""
    return (
        f"cannot vary with {model}: only dall-e-2 (variations) and gpt-image models (edits) "
        "take an image; set IMAGEBOT_IMAGE_MODEL to one of them"
    )


def square_png(data: bytes, side: int) -> bytes:
    """`data` as create_variation takes it: the very bytes when already a square PNG under
    4 MB, else resized to side x side (the inverse of the stretch that made a non-square
    picture from a square render) and made smaller until it fits."""
    with Image.open(io.BytesIO(data)) as image:
        if image.format == "PNG" and image.width == image.height and len(data) < VARIATION_LIMIT:
            return data
        picture = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    while True:
        buffer = io.BytesIO()
        picture.resize((side, side), Image.Resampling.LANCZOS).save(buffer, format="PNG")
        if buffer.tell() < VARIATION_LIMIT or side <= 256:
            return buffer.getvalue()
        side //= 2


def _sizes(*pairs: tuple[int, int]) -> FixedSizes:
    return FixedSizes(tuple(Size(w, h) for w, h in pairs))


@dataclass(frozen=True)
class ModelRules:
    """What one image model accepts."""

    sizes: FixedSizes
    max_n: int
    takes_response_format: bool  # GPT Image models always answer base64 and reject the field
    prompt_limit: int
    known: bool = True  # unknown models get their size passed through unchecked


DALL_E_2 = ModelRules(_sizes((256, 256), (512, 512), (1024, 1024)), 10, True, 1000)
DALL_E_3 = ModelRules(_sizes((1024, 1024), (1792, 1024), (1024, 1792)), 1, True, 4000)
GPT_IMAGE = ModelRules(_sizes((1024, 1024), (1536, 1024), (1024, 1536)), 10, False, 32000)
OTHER = ModelRules(DALL_E_2.sizes, 10, True, 32000, known=False)


def rules_for(model: str) -> ModelRules:
    """The rules of `model`; LocalAI and other compatible servers get dall-e-2's."""
    name = model.lower()
    if name == "dall-e-2":
        return DALL_E_2
    if name == "dall-e-3":
        return DALL_E_3
    if name.startswith("gpt-image"):
        return GPT_IMAGE
    return OTHER


def image_format(data: bytes) -> str:
    """The file extension that fits `data`'s magic bytes."""
    if data.startswith(b"\x89PNG"):
        return "png"
    if data.startswith(b"\xff\xd8"):
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    raise BadResponse(PROVIDER, "the server sent something that is not a PNG, JPEG, WebP or GIF")


class OpenAIImagesProvider:
    """Renders with `images.generate`; asks for base64 where the model allows it."""

    provider_id: ClassVar[str] = PROVIDER
    offline: ClassVar[bool] = False

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession,
        model: str,
        api_key: str | None = None,
        base_url: str | None = None,
        concurrency: int = 4,
        timeout: float = 180.0,
        max_retries: int = 2,
    ):
        self._client = make_client(
            PROVIDER, api_key, base_url, timeout=timeout, max_retries=max_retries
        )
        self._session = session
        self._model = model
        self._rules = rules_for(model)
        self._key = api_key
        self._concurrency = max(1, concurrency)
        self._timeout = timeout

    @classmethod
    def from_options(
        cls, options: ProviderOptions, session: aiohttp.ClientSession
    ) -> OpenAIImagesProvider:
        """A provider for OPENAI_API_KEY / OPENAI_BASE_URL and IMAGEBOT_IMAGE_MODEL."""
        return cls(
            session=session,
            model=options.image_model,
            api_key=options.openai_api_key,
            base_url=options.openai_base_url,
            concurrency=options.provider_concurrency,
        )

    @property
    def model(self) -> str:
        return self._model

    @property
    def max_images_per_call(self) -> int:
        return self._rules.max_n

    @property
    def max_concurrency(self) -> int:
        return self._concurrency

    def sizes(self) -> SizeRule:
        """The sizes this model renders."""
        return self._rules.sizes

    @property
    def accepts_init_image(self) -> bool:
        """True for dall-e-2 and GPT Image models (see `cannot_vary` for the others)."""
        return can_vary(self._model)

    async def render(self, request: RenderRequest) -> Sequence[RenderedImage]:
        """`request.count` images of the prompt at the fitted size."""
        model = request.model or self._model
        rules = rules_for(model)
        size = request.size
        if rules.known and size not in rules.sizes.sizes:
            size = rules.sizes.fit(size)  # a caller that skipped sizes(); never send a 400 size
        if request.init_image is not None and not can_vary(model):
            raise ProviderError(PROVIDER, cannot_vary(model))
        counts = [
            min(rules.max_n, request.count - done) for done in range(0, request.count, rules.max_n)
        ]
        batches = await asyncio.gather(
            *(self._generate(model, rules, request, size, n) for n in counts)
        )
        return [image for batch in batches for image in batch]

    async def _generate(
        self, model: str, rules: ModelRules, request: RenderRequest, size: Size, n: int
    ) -> list[RenderedImage]:
        params: dict[str, Any] = {"model": model, "n": n, "size": str(size)}
        if rules.takes_response_format:
            params["response_format"] = "b64_json"
        images = self._client.images
        if request.init_image is None:
            call: Any = images.generate
            params["prompt"] = request.prompt[: rules.prompt_limit]
        elif model.lower() == "dall-e-2":
            call = images.create_variation
            png = square_png(request.init_image, size.width)
            params["image"] = ("image.png", png, "image/png")
        else:
            call = images.edit
            kind = image_format(request.init_image)
            params["image"] = (f"image.{kind}", request.init_image, f"image/{kind}")
            params["prompt"] = request.prompt[: rules.prompt_limit]
        # Raised outside the except blocks so no SDK exception (which may quote the key)
        # rides along as __context__.
        error: ProviderError | None = None
        try:
            answer = await call(**params)
        except openai.OpenAIError as exc:
            error = error_for_openai(PROVIDER, exc, secrets=[self._key])
        except ValueError as exc:  # a 200 whose body is not JSON
            error = BadResponse(PROVIDER, f"the server sent an unreadable answer: {exc}")
        if error is not None:
            raise error
        items = answer.data or []
        if len(items) < n:
            raise BadResponse(PROVIDER, f"asked for {n} images, the server sent {len(items)}")
        return list(await asyncio.gather(*(self._image(item) for item in items[:n])))

    async def _image(self, item: Any) -> RenderedImage:
        if item.b64_json:
            try:
                data = base64.b64decode(item.b64_json, validate=True)
            except (binascii.Error, ValueError):
                raise BadResponse(PROVIDER, "the server sent an image that is not base64") from None
        elif item.url:
            # A server that ignores response_format answers with links; they expire, so fetch now.
            data, _ = await request_bytes(
                self._session, "GET", item.url, provider=PROVIDER, timeout=self._timeout
            )
        else:
            raise BadResponse(PROVIDER, "the server sent an image with neither data nor a URL")
        return RenderedImage(
            data=data,
            seed=None,
            format=image_format(data),
            revised_prompt=item.revised_prompt or None,
        )

    async def aclose(self) -> None:
        """Close the SDK's HTTP client (the shared aiohttp session belongs to the caller)."""
        await self._client.close()
