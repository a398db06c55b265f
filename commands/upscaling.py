"""Upscale: image N of an archived batch at twice its size, archived beside it (SPEC §4, §6)."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagebot.commands.captions import read_info
from imagebot.providers.base import UpscaledImage, UsageError
from imagebot.storage.files import atomic_write_bytes, atomic_write_text

if TYPE_CHECKING:
    from imagebot.commands.services import Services

SCALE = 2


def image_file(row: dict[str, Any] | None, image: int) -> Path:
    """The file of image `image` of a batch; UsageError when there is no such image."""
    folder = Path(row["folder"]) if row and row.get("folder") else None
    files = [entry["file"] for entry in read_info(folder).get("images", [])]
    if folder is None or not files:
        raise UsageError("that batch's images are no longer in the archive")
    if not 1 <= image <= len(files):
        raise UsageError(f"that batch has {len(files)} images; there is no image {image}")
    return folder / files[image - 1]


async def upscale_image(services: Services, batch_id: str, image: int, provider_id: str) -> dict:
    """Upscale and archive; returns what was written (file, width, height, upscaler)."""
    from imagebot.providers.local.upscale import upscale_locally

    row = services.index.get_batch(batch_id)
    source = image_file(row, image)
    data = await asyncio.to_thread(source.read_bytes)
    provider = None
    if services.config.is_configured(provider_id):
        provider = await services.provider(provider_id)
    if provider is not None and hasattr(provider, "upscale"):
        upscaled: UpscaledImage = await provider.upscale(data, SCALE)
    else:  # local, dalle, horde: a high-quality local resize (SPEC §6)
        upscaled = await asyncio.to_thread(upscale_locally, data, SCALE)
    target = source.with_name(f"{image}-upscaled.png")
    await asyncio.to_thread(atomic_write_bytes, target, _as_png(upscaled))
    entry = {
        "image": image,
        "file": target.name,
        "width": upscaled.width,
        "height": upscaled.height,
        "provider": provider_id,
        "upscaler": upscaled.upscaler,
    }
    await asyncio.to_thread(_record, source.parent, entry)
    return {**entry, "path": str(target)}


def _as_png(upscaled: UpscaledImage) -> bytes:
    if upscaled.format == "png":
        return upscaled.data
    from PIL import Image

    buffer = io.BytesIO()
    with Image.open(io.BytesIO(upscaled.data)) as picture:
        picture.save(buffer, "PNG")
    return buffer.getvalue()


def _record(folder: Path, entry: dict[str, Any]) -> None:
    """List the upscale in info.json (`upscales`), replacing an earlier one of that image."""
    info = read_info(folder)
    upscales = [u for u in info.get("upscales", []) if u.get("image") != entry["image"]]
    info["upscales"] = sorted([*upscales, entry], key=lambda u: u["image"])
    atomic_write_text(folder / "info.json", json.dumps(info, indent=2, ensure_ascii=False))
