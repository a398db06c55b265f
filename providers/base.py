"""The small interfaces every prompt source and image provider implements, and their errors."""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

# --------------------------------------------------------------------------- errors


class ProviderError(Exception):
    """A failure of an outside service, phrased for the user who asked."""

    kind: ClassVar[str] = "error"

    def __init__(self, provider: str, message: str, *, retry_after: float | None = None):
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.message = message
        self.retry_after = retry_after


class NeedsKey(ProviderError):
    """The service refused our credentials (401/403) or none were configured."""

    kind = "needs-key"


class Unavailable(ProviderError):
    """Rate limited, overloaded, timed out or unreachable: worth retrying or falling back."""

    kind = "unavailable"


class Refused(ProviderError):
    """The service refused the prompt's content (safety / content policy)."""

    kind = "refused"


class BadResponse(ProviderError):
    """The service answered, but not with something we can use."""

    kind = "bad-response"


class ConfigError(Exception):
    """A missing or malformed setting; the message names the variable."""


class UsageError(ValueError):
    """Bad user input: the message says what is wrong and what is allowed."""


# --------------------------------------------------------------------------- sizes

SIZE_PATTERN = re.compile(r"^\s*(\d{1,5})\s*[xX×]\s*(\d{1,5})\s*$")
MIN_SIDE = 64
MAX_SIDE = 4096
MAX_PIXELS = 4096 * 4096


@dataclass(frozen=True, order=True)
class Size:
    """An image size in pixels."""

    width: int
    height: int

    @classmethod
    def parse(cls, text: str) -> Size:
        """Parse `WxH`; raise UsageError saying what is allowed."""
        match = SIZE_PATTERN.match(text or "")
        if not match:
            raise UsageError(
                f"size {text!r} is not WxH: use width x height in pixels, e.g. 512x512 or 1024x576"
            )
        size = cls(int(match.group(1)), int(match.group(2)))
        if not (MIN_SIDE <= size.width <= MAX_SIDE and MIN_SIDE <= size.height <= MAX_SIDE):
            raise UsageError(
                f"size {size} is out of range: each side must be {MIN_SIDE} to {MAX_SIDE} pixels"
            )
        return size

    @property
    def area(self) -> int:
        return self.width * self.height

    @property
    def aspect(self) -> float:
        return self.width / self.height

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"


def _aspect_distance(a: Size, b: Size) -> float:
    return abs(math.log(a.aspect) - math.log(b.aspect))


class SizeRule(Protocol):
    """What a provider can render, and how a requested WxH maps onto it."""

    def fit(self, requested: Size) -> Size: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class FixedSizes:
    """A provider that renders only a list of sizes (DALL·E, SDXL engines, aspect ratios)."""

    sizes: tuple[Size, ...]

    def fit(self, requested: Size) -> Size:
        """Nearest aspect first; among those the smallest with at least the requested area."""
        best_distance = min(_aspect_distance(s, requested) for s in self.sizes)
        same_aspect = [
            s for s in self.sizes if _aspect_distance(s, requested) <= best_distance + 1e-9
        ]
        big_enough = [s for s in same_aspect if s.area >= requested.area]
        if big_enough:
            return min(big_enough, key=lambda s: s.area)
        return max(same_aspect, key=lambda s: s.area)

    def describe(self) -> str:
        return ", ".join(str(s) for s in self.sizes)


@dataclass(frozen=True)
class FreeSizes:
    """A provider that renders any size on a grid (multiples of `step`) within bounds."""

    step: int = 8
    min_side: int = 64
    max_side: int = 2048
    max_pixels: int = 2048 * 2048

    def fit(self, requested: Size) -> Size:
        """Round each side up to the grid, keeping the aspect, within the bounds."""
        width, height = requested.width, requested.height
        scale = 1.0
        if width * height > self.max_pixels:
            scale = math.sqrt(self.max_pixels / (width * height))
        scale = min(scale, self.max_side / max(width, height))
        scale = max(scale, self.min_side / min(width, height))

        def snap(side: float) -> int:
            snapped = math.ceil(side / self.step) * self.step
            return max(self.min_side, min(self.max_side, snapped))

        return Size(snap(width * scale), snap(height * scale))

    def describe(self) -> str:
        grid = "" if self.step == 1 else f" in multiples of {self.step}"
        return (
            f"any size{grid}, sides {self.min_side}-{self.max_side}, "
            f"up to {self.max_pixels // 1_000_000 or 1} MP"
        )


# --------------------------------------------------------------------------- prompts


@dataclass(frozen=True)
class PromptRequest:
    """What the user asked a prompt source for."""

    count: int = 1
    role: str | None = None  # None: the source picks a role per spec
    theme: str | None = None
    seed: int | None = None


@dataclass
class PromptSpec:
    """One prompt spec: what to draw, and the recipe that produced it."""

    title: str
    description: str
    metatags: list[str]
    prompt: str
    negative_prompt: str = ""
    role: str = ""
    theme: str | None = None
    prompt_source: str = "templates"
    prompt_model: str | None = None
    picks: dict[str, Any] = field(default_factory=dict)  # what the source drew from data/
    settings: dict[str, Any] = field(default_factory=dict)  # the role's render settings

    def csv_row(self) -> dict[str, str]:
        """The four columns of batch_prompts.csv (SPEC §5)."""
        return {
            "title": self.title,
            "description": self.description,
            "metatags": ", ".join(self.metatags),
            "prompt": self.prompt,
        }


class PromptSource(Protocol):
    """Where prompt specs come from."""

    source_id: ClassVar[str]

    @property
    def model(self) -> str | None: ...

    async def generate(self, request: PromptRequest) -> list[PromptSpec]: ...

    async def soften(self, spec: PromptSpec, reason: str) -> PromptSpec:
        """Rewrite a spec a renderer refused for safety into a tamer one, same role and theme."""
        ...

    async def aclose(self) -> None: ...


# --------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class RenderRequest:
    """One call to a provider: `len(seeds)` images of one prompt at `size`."""

    prompt: str
    negative_prompt: str
    size: Size  # what the provider renders (already fitted by its SizeRule)
    seeds: tuple[int, ...]
    settings: dict[str, Any] = field(default_factory=dict)  # steps, cfg_scale, sampler, ...
    model: str | None = None
    role: str = ""  # the role pack the prompt came from; the local renderer styles by it
    # Image-to-image (Vary): the picture to start from, as PNG or JPEG bytes at `size`, and how
    # far the result may move from it (0 = the same picture, 1 = ignore it).
    init_image: bytes | None = None
    strength: float | None = None

    @property
    def count(self) -> int:
        return len(self.seeds)


@dataclass(frozen=True)
class RenderedImage:
    """One image as the provider returned it."""

    data: bytes
    seed: int | None
    format: str = "png"  # file extension: png, jpeg, webp
    revised_prompt: str | None = None


@dataclass(frozen=True)
class UpscaledImage:
    """One image made larger (Upscale), and what did it."""

    data: bytes
    width: int
    height: int
    upscaler: str  # the server's upscaler ("R-ESRGAN 4x+"), a workflow node, or "local"
    format: str = "png"


ProgressCallback = Callable[[str], Awaitable[None] | None]
# A live preview while rendering: (PNG/JPEG/WebP bytes, fraction done 0..1 or None).
PreviewCallback = Callable[[bytes, float | None], Awaitable[None] | None]


async def notify(progress: ProgressCallback | None, text: str) -> None:
    """Tell a provider's progress callback, sync or async."""
    if progress is None:
        return
    result = progress(text)
    if inspect.isawaitable(result):
        await result


class ImageProvider(Protocol):
    """An image renderer. `render` returns `request.count` images or raises ProviderError.

    The caller (commands.render) fits the size with `sizes()`, splits a batch into calls of at
    most `max_images_per_call` images and runs up to `max_concurrency` calls at once, so a
    provider renders exactly what one RenderRequest asks and no more.

    Optional abilities, found by the caller with getattr/signature:
    - `render(request, progress=...)`: text notes while waiting (queue place, kudos, ...);
    - `render(request, previews=...)`: live preview images (PreviewCallback);
    - `accepts_init_image` (bool property): whether `request.init_image` is honoured (Vary);
      when False the caller refuses a Vary with one clear sentence before queueing it;
    - `async upscale(image: bytes, scale: int = 2) -> UpscaledImage`: a real upscaler; without
      it the caller resizes locally (providers.local.upscale).
    """

    provider_id: ClassVar[str]
    offline: ClassVar[bool]  # True only for the local renderer

    @property
    def model(self) -> str: ...

    @property
    def max_images_per_call(self) -> int: ...

    @property
    def max_concurrency(self) -> int: ...

    def sizes(self) -> SizeRule: ...

    async def render(self, request: RenderRequest) -> Sequence[RenderedImage]: ...

    async def aclose(self) -> None: ...
