"""Upscale: image N of an archived batch at twice its size, archived beside it (SPEC §4, §6)."""

from __future__ import annotations

import asyncio
import io
import json
from typing import TYPE_CHECKING, Any

from imagebot.providers.base import UpscaledImage, UsageError

if TYPE_CHECKING:
    from imagebot.commands.services import Services

SCALE = 2


async def batch_image(services: Services, batch_id: str, image: int) -> tuple[str, str, bytes]:
    """The folder, file name and bytes of image `image` of a batch, wherever the archive
    keeps it (a local folder or the object store); UsageError when there is no such image.
    Upscale and vary both read their source image through it."""
    folder, name = await image_name(services, services.index.get_batch(batch_id), image)
    try:
        data = await services.archive.read_file(folder, name)
    except OSError:
        raise UsageError("that batch's images are no longer in the archive") from None
    return folder, name, data


async def image_name(services: Services, row: dict[str, Any] | None, image: int) -> tuple[str, str]:
    """The folder and file name of image `image` of a batch row (its info.json is read)."""
    folder = str(row["folder"]) if row and row.get("folder") else ""
    info = await services.archive.read_info(folder)
    files = [str(entry.get("file")) for entry in info.get("images", [])]
    if not folder or not files:
        raise UsageError("that batch's images are no longer in the archive")
    if not 1 <= image <= len(files):
        raise UsageError(f"that batch has {len(files)} images; there is no image {image}")
    return folder, files[image - 1]


async def upscale_image(services: Services, batch_id: str, image: int, provider_id: str) -> dict:
    """Upscale and archive; returns what was written (file, width, height, upscaler)."""
    from imagebot.providers.local.upscale import upscale_locally

    folder, _, data = await batch_image(services, batch_id, image)
    provider = None
    if services.config.is_configured(provider_id):
        provider = await services.provider(provider_id)
    if provider is not None and hasattr(provider, "upscale"):
        upscaled: UpscaledImage = await provider.upscale(data, SCALE)
    else:  # local, dalle, horde: a high-quality local resize (SPEC §6)
        upscaled = await asyncio.to_thread(upscale_locally, data, SCALE)
    name = f"{image}-upscaled.png"
    await services.archive.write_file(folder, name, _as_png(upscaled))
    entry = {
        "image": image,
        "file": name,
        "width": upscaled.width,
        "height": upscaled.height,
        "provider": provider_id,
        "upscaler": upscaled.upscaler,
    }
    await _record(services, folder, entry)
    local = services.archive.local_folder(folder)
    path = str(local / name) if local is not None and (local / name).is_file() else None
    return {**entry, "path": path or f"{folder}/{name}"}


def _as_png(upscaled: UpscaledImage) -> bytes:
    if upscaled.format == "png":
        return upscaled.data
    from PIL import Image

    buffer = io.BytesIO()
    with Image.open(io.BytesIO(upscaled.data)) as picture:
        picture.save(buffer, "PNG")
    return buffer.getvalue()


async def _record(services: Services, folder: str, entry: dict[str, Any]) -> None:
    """List the upscale in info.json (`upscales`), replacing an earlier one of that image."""
    info = await services.archive.read_info(folder)
    upscales = [u for u in info.get("upscales", []) if u.get("image") != entry["image"]]
    info["upscales"] = sorted([*upscales, entry], key=lambda u: u["image"])
    data = json.dumps(info, indent=2, ensure_ascii=False).encode("utf-8")
    await services.archive.write_file(folder, "info.json", data)
