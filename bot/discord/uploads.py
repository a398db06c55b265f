"""Fit a batch's images under Discord's upload budget: re-encode PNG as JPEG, then downscale.

Runs in a worker thread (Pillow is CPU-bound). The archive keeps the originals; only the
posted copies shrink.
"""

from __future__ import annotations

import io
from pathlib import Path

HEADROOM = 64 * 1024  # multipart framing and the JSON payload travel in the same request
QUALITIES = (90, 80)
MIN_SIDE = 64  # below this the picture is useless; give up and let the post fail loudly


def _total(files: list[tuple[str, bytes]]) -> int:
    return sum(len(data) for _, data in files)


def _jpeg(data: bytes, quality: int, scale: float) -> bytes:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        image = image.convert("RGB")
        if scale < 1.0:
            size = (max(1, int(image.width * scale)), max(1, int(image.height * scale)))
            image = image.resize(size, Image.Resampling.LANCZOS)
        out = io.BytesIO()
        image.save(out, "JPEG", quality=quality, optimize=True)
        return out.getvalue()


def fit_uploads(paths: list[Path], budget: int) -> list[tuple[str, bytes]]:
    """(filename, bytes) of each image, together under `budget` bytes where at all possible."""
    originals = [(path.name, path.read_bytes()) for path in paths]
    limit = max(1, budget - HEADROOM)
    if _total(originals) <= limit:
        return originals
    names = [f"{Path(name).stem}.jpg" for name, _ in originals]
    scale = 1.0
    fitted = originals
    while True:
        for quality in QUALITIES:
            fitted = [
                (name, _jpeg(data, quality, scale))
                for name, (_, data) in zip(names, originals, strict=True)
            ]
            if _total(fitted) <= limit:
                return fitted
        scale *= 0.7
        if scale * _largest_side(originals[0][1]) < MIN_SIDE:
            return fitted  # Discord will refuse it; the runtime reports the failed post


def _largest_side(data: bytes) -> int:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return max(image.size)
