"""The `local` provider: paints offline with Pillow, no network, GPU or key; the default one."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from imagebot.providers.base import (
    MAX_PIXELS,
    MAX_SIDE,
    MIN_SIDE,
    BadResponse,
    FreeSizes,
    ProviderError,
    RenderedImage,
    RenderRequest,
    Size,
    SizeRule,
    UsageError,
)

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

MODEL = "offline-procedural-v1"


DEFAULT_STRENGTH = 0.55


def render_png(
    prompt: str,
    role: str,
    size: Size,
    seed: int,
    init_image: bytes | None = None,
    strength: float | None = None,
) -> bytes:
    """One PNG of exactly `size` for this prompt, role and seed (CPU-bound: call in a thread).

    With `init_image` it is a variation: the init picture blended with a new render of the
    same prompt at this seed, `strength` (0 = the init image, 1 = the new render) apart.
    """
    from PIL import Image

    from imagebot.providers.local.art import paint, png_bytes
    from imagebot.providers.local.upscale import open_checked

    fresh = paint(prompt, role, size.width, size.height, seed)
    if init_image is None:
        return png_bytes(fresh)
    base = open_checked(init_image).convert("RGB")
    if base.size != fresh.size:
        base = base.resize(fresh.size, Image.Resampling.LANCZOS)
    amount = DEFAULT_STRENGTH if strength is None else min(1.0, max(0.0, float(strength)))
    return png_bytes(Image.blend(base, fresh, amount))


class LocalProvider:
    """Procedural pictures following the prompt's colours and the role's look, by seed."""

    provider_id: ClassVar[str] = "local"
    offline: ClassVar[bool] = True

    def __init__(self, concurrency: int = 2) -> None:
        self._concurrency = max(1, concurrency)

    @classmethod
    def from_options(cls, options: Any = None, session: Any = None) -> LocalProvider:
        """The local renderer needs neither settings nor the HTTP session."""
        return cls()

    @property
    def model(self) -> str:
        return MODEL

    @property
    def accepts_init_image(self) -> bool:
        """Vary works offline: a seeded blend of the init image and a new render."""
        return True

    @property
    def max_images_per_call(self) -> int:
        return 1

    @property
    def max_concurrency(self) -> int:
        return self._concurrency

    def sizes(self) -> SizeRule:
        """Any size from 64 to 4096 a side, rendered exactly."""
        return FreeSizes(step=1, min_side=MIN_SIDE, max_side=MAX_SIDE, max_pixels=MAX_PIXELS)

    async def render(self, request: RenderRequest) -> Sequence[RenderedImage]:
        """One PNG per seed, painted in a worker thread so the event loop stays responsive."""
        size = request.size
        if not (
            MIN_SIDE <= min(size.width, size.height) and max(size.width, size.height) <= MAX_SIDE
        ):
            raise UsageError(
                f"size {size} is out of range: each side must be {MIN_SIDE} to {MAX_SIDE}"
            )
        images = []
        for seed in request.seeds:
            try:
                data = await asyncio.to_thread(
                    render_png,
                    request.prompt,
                    request.role,
                    size,
                    seed,
                    request.init_image,
                    request.strength,
                )
            except ProviderError:
                raise
            except Exception as exc:  # a painting bug must reach the user as one clear line
                log.exception("local renderer failed for seed %s", seed)
                raise BadResponse(self.provider_id, f"could not paint the image: {exc}") from exc
            images.append(RenderedImage(data=data, seed=seed, format="png"))
        return images

    async def aclose(self) -> None:
        """Nothing to release."""
