"""Stability's v2beta fast upscale: its input rules, and fitting any image to them.

The fast upscaler makes an image 4x as wide and as tall. It takes 32 to 1,536 pixels a side,
1,024 to 1,048,576 pixels in all, and an aspect ratio from 1:2.5 to 2.5:1. Any image is made to
fit (scaled into the pixel budget; a very long or tall one padded out to 2.5:1), upscaled 4x,
the padding cut off again, and the result resized to exactly `scale` times the original with
Lanczos, so the caller always gets the size it asked for.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

from PIL import Image

FAST_UPSCALE_PATH = "/v2beta/stable-image/upscale/fast"
FACTOR = 4  # the fast upscaler's fixed factor
MIN_SIDE, MAX_SIDE = 32, 1536
MIN_PIXELS, MAX_PIXELS = 1024, 1_048_576
MAX_ASPECT = 2.5


def within_rules(width: int, height: int) -> bool:
    """Whether the fast upscaler takes an image of this size as it is."""
    aspect = max(width, height) / min(width, height)
    return (
        MIN_SIDE <= min(width, height)
        and max(width, height) <= MAX_SIDE
        and MIN_PIXELS <= width * height <= MAX_PIXELS
        and aspect <= MAX_ASPECT
    )


@dataclass(frozen=True)
class Prepared:
    """What is sent, and where the original sits inside it (to cut it out of the result)."""

    png: bytes
    canvas: tuple[int, int]  # the size of what is sent
    box: tuple[int, int, int, int]  # left, top, right, bottom of the original in it
    original: tuple[int, int]


def prepare(data: bytes) -> Prepared:
    """The image as a PNG the fast upscaler takes: the very bytes when a PNG already fits."""
    with Image.open(io.BytesIO(data)) as opened:
        image = opened.convert("RGBA" if "A" in opened.getbands() else "RGB")
        is_png = opened.format == "PNG"
    width, height = image.size
    if within_rules(width, height):
        png = data if is_png else _png(image)
        return Prepared(png, (width, height), (0, 0, width, height), (width, height))
    # Pad a strip longer than 2.5:1 out to a little under that (rounding stays inside the
    # rule); then scale the canvas into the side and pixel bounds, again with a margin.
    aspect = MAX_ASPECT * 0.98
    canvas_w, canvas_h = max(width, height / aspect), max(height, width / aspect)
    scale = min(1.0, MAX_SIDE / max(canvas_w, canvas_h))
    scale = min(scale, math.sqrt(MAX_PIXELS * 0.99 / (canvas_w * canvas_h)))
    scale = max(scale, MIN_SIDE * 1.02 / min(canvas_w, canvas_h))
    scale = max(scale, math.sqrt(MIN_PIXELS * 1.02 / (canvas_w * canvas_h)))
    canvas = (round(canvas_w * scale), round(canvas_h * scale))
    inner = (
        min(canvas[0], max(1, round(width * scale))),
        min(canvas[1], max(1, round(height * scale))),
    )
    resized = image.resize(inner, Image.Resampling.LANCZOS)
    # The padding is the picture stretched, so the upscaler sees no hard edge at the seam.
    padded = image.resize(canvas, Image.Resampling.BILINEAR) if canvas != inner else resized
    left, top = (canvas[0] - inner[0]) // 2, (canvas[1] - inner[1]) // 2
    padded.paste(resized, (left, top))
    box = (left, top, left + inner[0], top + inner[1])
    return Prepared(_png(padded), canvas, box, (width, height))


def finish(upscaled: bytes, prepared: Prepared, scale: int) -> tuple[bytes, int, int]:
    """The upscaler's answer cut to the original and resized to exactly `scale` times it."""
    target = (prepared.original[0] * scale, prepared.original[1] * scale)
    with Image.open(io.BytesIO(upscaled)) as opened:
        image = opened.copy()
    ratio_x, ratio_y = image.width / prepared.canvas[0], image.height / prepared.canvas[1]
    left, top, right, bottom = prepared.box
    crop = (
        round(left * ratio_x),
        round(top * ratio_y),
        round(right * ratio_x),
        round(bottom * ratio_y),
    )
    if crop != (0, 0, image.width, image.height):
        image = image.crop(crop)
    if image.size != target:
        image = image.resize(target, Image.Resampling.LANCZOS)
    return _png(image), target[0], target[1]


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
