"""Upscale without a server: Pillow's Lanczos resize and a light unsharp mask, PNG out."""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageFilter

from imagebot.providers.base import MAX_PIXELS, BadResponse, UpscaledImage

# Decoded pixels we accept in (a decompression bomb stops here) and produce out.
MAX_INPUT_PIXELS = MAX_PIXELS
MAX_OUTPUT_PIXELS = 4 * MAX_PIXELS


def open_checked(data: bytes, limit: int | None = None) -> Image.Image:
    """Open an image, refusing one of more than `limit` pixels before its pixels are decoded."""
    limit = limit or MAX_INPUT_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise BadResponse(
            "local", f"image is too large; the local upscaler takes at most {limit:,} pixels"
        ) from None
    except (OSError, ValueError) as exc:
        raise BadResponse("local", f"cannot read the image: {exc}") from None
    width, height = image.size
    if width * height > limit:
        raise BadResponse(
            "local",
            f"image is {width}x{height} ({width * height:,} pixels); "
            f"the local upscaler takes at most {limit:,} pixels",
        )
    return image


def upscale_locally(data: bytes, scale: int = 2) -> UpscaledImage:
    """`data` (PNG/JPEG/WebP) made `scale` times larger as a PNG; upscaler "local"."""
    if scale < 1:
        raise BadResponse("local", f"scale must be 1 or more, not {scale}")
    image = open_checked(data)
    width, height = image.size[0] * scale, image.size[1] * scale
    if width * height > MAX_OUTPUT_PIXELS:
        raise BadResponse(
            "local",
            f"a {scale}x upscale of {image.size[0]}x{image.size[1]} would be {width}x{height}; "
            f"the local upscaler makes at most {MAX_OUTPUT_PIXELS:,} pixels",
        )
    mode = "RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB"
    big = image.convert(mode).resize((width, height), Image.Resampling.LANCZOS)
    big = big.filter(ImageFilter.UnsharpMask(radius=1.2, percent=60, threshold=2))
    out = io.BytesIO()
    big.save(out, "PNG", compress_level=3)
    return UpscaledImage(data=out.getvalue(), width=width, height=height, upscaler="local")
