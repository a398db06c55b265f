"""Gallery thumbnails: made once per image, cached on disk under <output>/.thumbs, at most
40 KB each (WebP, quality lowered until it fits)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from pathlib import Path

from PIL import Image

from imagebot.storage.files import atomic_write_bytes

THUMBS = ".thumbs"
EDGE = 320  # longest side, in pixels
MAX_BYTES = 40 * 1024
QUALITIES = (72, 60, 48, 36, 24)


def encode_thumbnail(source: Path | bytes) -> bytes:
    """A WebP of `source` (a file, or an image's bytes) whose longest side is EDGE, in at
    most MAX_BYTES."""
    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
        image.draft("RGB", (EDGE, EDGE))  # JPEG sources decode at a fraction of their size
        picture = image.convert("RGB")
    picture.thumbnail((EDGE, EDGE), Image.Resampling.LANCZOS)
    data = b""
    for _ in range(3):
        for quality in QUALITIES:
            buffer = io.BytesIO()
            picture.save(buffer, "WEBP", quality=quality, method=4)
            data = buffer.getvalue()
            if len(data) <= MAX_BYTES:
                return data
        picture.thumbnail((picture.width * 3 // 4, picture.height * 3 // 4))
    return data


class Thumbnails:
    """Where each thumbnail lives, and the one task that makes a missing one."""

    def __init__(self, root: Path) -> None:
        self.folder = root / THUMBS
        self.made = 0  # thumbnails encoded by this process (the bench checks none is remade)
        self._making: dict[Path, asyncio.Future[Path]] = {}

    def path(self, batch_id: str, number: int) -> Path:
        # The id and number are validated by the caller: plain hex and a small integer.
        return self.folder / batch_id[:2] / f"{batch_id}-{number}.webp"

    async def get(
        self, batch_id: str, number: int, source: Path | Callable[[], Awaitable[bytes]]
    ) -> Path:
        """The cached thumbnail, made in a thread the first time (once, however many ask).
        `source` is the image file, or what fetches its bytes (an S3 batch's image)."""
        target = self.path(batch_id, number)
        if target.is_file():
            return target
        pending = self._making.get(target)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Path] = asyncio.get_running_loop().create_future()
        self._making[target] = future
        try:
            original = source if isinstance(source, Path) else await source()
            data = await asyncio.to_thread(encode_thumbnail, original)
            target.parent.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(atomic_write_bytes, target, data)
            self.made += 1
            future.set_result(target)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: a lone request does not warn about it
            raise
        finally:
            del self._making[target]
        return target

    def forget(self, batch_id: str) -> None:
        """Remove a deleted batch's thumbnails."""
        folder = self.folder / batch_id[:2]
        for path in folder.glob(f"{batch_id}-*.webp") if folder.is_dir() else ():
            path.unlink(missing_ok=True)
