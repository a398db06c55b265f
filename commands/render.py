"""Render one prompt spec COUNT times with a provider: concurrent calls, partial results kept."""

from __future__ import annotations

import asyncio
import inspect
import io
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from imagebot.providers.base import (
    BadResponse,
    ImageProvider,
    ProgressCallback,
    PromptSource,
    PromptSpec,
    ProviderError,
    Refused,
    RenderedImage,
    RenderRequest,
    Size,
)
from imagebot.providers.batching import PartialRender

Progress = Callable[[int, int], Awaitable[None] | None]  # (images done, images asked)
# The most pixels we decode from a provider's answer: ample for 4096x4096 RGBA (SPEC §3's
# largest size) upscaled 2x, and far from what a hostile server's "decompression bomb" asks.
MAX_DECODED_PIXELS = 8192 * 8192


@dataclass(frozen=True)
class FinalImage:
    """An image resized to exactly the size the user asked for, ready to archive."""

    data: bytes
    extension: str
    width: int
    height: int
    seed: int | None
    revised_prompt: str | None = None


@dataclass
class RenderOutcome:
    images: list[FinalImage]
    errors: list[ProviderError] = field(default_factory=list)
    rendered_size: Size | None = None
    softened_prompt: str | None = None


async def report_progress(progress: Progress | None, done: int, total: int) -> None:
    if progress is None:
        return
    result = progress(done, total)
    if inspect.isawaitable(result):
        await result


def _accepts_progress(provider: ImageProvider) -> bool:
    return "progress" in inspect.signature(provider.render).parameters


def to_exact_size(image: RenderedImage, size: Size) -> FinalImage:
    """Cover-scale and centre-crop to exactly `size`; untouched when it already fits.

    Raises BadImage when the bytes are not an image we can use (empty, not an image, or
    larger than MAX_DECODED_PIXELS).
    """
    from PIL import Image

    if not image.data:
        raise BadImage("an empty file instead of an image")
    try:
        with Image.open(io.BytesIO(image.data)) as opened:
            width, height = opened.size
            if width * height > MAX_DECODED_PIXELS or not width or not height:
                raise BadImage(f"{width}x{height} pixels, {_TOO_LARGE}")
            return _fit(opened, image, size)
    except BadImage:
        raise
    except Image.DecompressionBombError:
        raise BadImage(_TOO_LARGE) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise BadImage(f"a file that is not a readable image ({type(exc).__name__})") from None


_TOO_LARGE = f"larger than the {MAX_DECODED_PIXELS // 1_000_000} million pixels this bot decodes"


class BadImage(Exception):
    """A provider returned bytes that are not a usable image; the message says what."""


def _fit(opened: Any, image: RenderedImage, size: Size) -> FinalImage:
    from PIL import Image, ImageOps

    source_format = (opened.format or "PNG").upper()
    extension = {"JPEG": "jpg", "WEBP": "webp", "PNG": "png"}.get(source_format, "png")
    if opened.size == (size.width, size.height) and extension != "webp":
        opened.load()  # a truncated file fails here, not later in a chat client
        return FinalImage(
            image.data, extension, size.width, size.height, image.seed, image.revised_prompt
        )
    picture = opened.convert("RGBA" if "A" in opened.getbands() else "RGB")
    if picture.size != (size.width, size.height):
        picture = ImageOps.fit(picture, (size.width, size.height), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    # WebP from the Horde becomes PNG: every chat client shows PNG.
    if extension == "jpg":
        picture.convert("RGB").save(buffer, "JPEG", quality=95)
    else:
        extension = "png"
        picture.save(buffer, "PNG", optimize=False, compress_level=3)
    return FinalImage(
        buffer.getvalue(), extension, size.width, size.height, image.seed, image.revised_prompt
    )


def _decode_all(
    images: list[RenderedImage], size: Size, provider: str, first: int
) -> tuple[list[FinalImage | None], list[ProviderError]]:
    """Each image decoded on its own: a bad one is reported (numbered in the batch from
    `first`), the good ones are kept."""
    finals: list[FinalImage | None] = []
    problems: list[ProviderError] = []
    for number, image in enumerate(images, first):
        try:
            finals.append(to_exact_size(image, size))
        except BadImage as exc:
            finals.append(None)
            problems.append(BadResponse(provider, f"image {number} was {exc}"))
    return finals, problems


async def render_spec(
    provider: ImageProvider,
    spec: PromptSpec,
    size: Size,
    seeds: list[int],
    slots: asyncio.Semaphore,
    *,
    source: PromptSource | None = None,
    progress: Progress | None = None,
    notes: ProgressCallback | None = None,
) -> RenderOutcome:
    """Render `len(seeds)` images of `spec`, up to the provider's cap at once.

    Images that render are kept even when others fail. A refusal for safety gets one
    rewrite of the prompt (by `source`) and one retry before it is reported.
    """
    rendered_size = provider.sizes().fit(size)
    per_call = max(1, provider.max_images_per_call)
    chunks = [seeds[i : i + per_call] for i in range(0, len(seeds), per_call)]
    results: list[list[FinalImage] | None] = [None] * len(chunks)
    errors: list[ProviderError | None] = [None] * len(chunks)
    done = 0
    await report_progress(progress, 0, len(seeds))
    # Providers that wait in a queue (Horde, ComfyUI) say where they are, when asked to.
    extra = {"progress": notes} if notes and _accepts_progress(provider) else {}
    bad_images: list[ProviderError] = []

    async def run_chunk(index: int, prompt: str, revised: str | None) -> None:
        nonlocal done
        request = RenderRequest(
            prompt=prompt,
            negative_prompt=spec.negative_prompt,
            size=rendered_size,
            seeds=tuple(chunks[index]),
            settings=dict(spec.settings),
            model=provider.model,
            role=spec.role,
        )
        try:
            async with slots:
                try:
                    images = await provider.render(request, **extra)
                except PartialRender as partial:  # some of its batches failed: keep the rest
                    images = partial.images
                    bad_images.append(partial.error)
            finals, problems = await asyncio.to_thread(
                _decode_all, list(images), size, provider.provider_id, index * per_call + 1
            )
        except ProviderError as exc:
            errors[index] = exc
            return
        results[index] = [
            FinalImage(
                f.data,
                f.extension,
                f.width,
                f.height,
                f.seed if f.seed is not None else seed,
                f.revised_prompt or revised,
            )
            for f, seed in zip(finals, chunks[index], strict=False)
            if f is not None
        ]
        errors[index] = None
        bad_images.extend(problems)
        done += len(results[index])
        await report_progress(progress, done, len(seeds))

    await asyncio.gather(*(run_chunk(i, spec.prompt, None) for i in range(len(chunks))))

    softened_prompt = None
    refused = [i for i, error in enumerate(errors) if isinstance(error, Refused)]
    if refused and source is not None:
        try:
            softened = await source.soften(spec, str(errors[refused[0]]))
        except ProviderError:
            softened = None
        if softened is not None and softened.prompt != spec.prompt:
            softened_prompt = softened.prompt
            await asyncio.gather(*(run_chunk(i, softened.prompt, softened.prompt) for i in refused))

    images = [image for chunk in results if chunk for image in chunk]
    failures = [error for error in errors if error is not None] + bad_images
    return RenderOutcome(images, failures, rendered_size, softened_prompt)
