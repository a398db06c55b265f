"""Batch folders: images, info.json and info.md, published whole or not at all (SPEC §4)."""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import os
import re
import shutil
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagebot.storage.files import (
    atomic_write_bytes,
    atomic_write_text,
    fsync_dir,
    inside,
    slugify,
)
from imagebot.storage.object_store import is_remote
from imagebot.storage.text import clean

if TYPE_CHECKING:
    from imagebot.storage.object_store import ObjectStore

STAGING = ".staging"
S3_CACHE = ".s3cache"  # local copies of S3 batches' files: a cache, safe to delete
OFFLINE_NOTE = (
    "these images are procedural offline renders by imagebot's built-in `local` renderer, "
    "not by an AI model. For real renders with no account: set HORDE_API_KEY=0000000000 "
    "and use --provider horde (the AI Horde, anonymous)."
)


@dataclass(frozen=True)
class ArchivedImage:
    """One image file of a batch as info.json lists it."""

    file: str
    width: int
    height: int
    seed: int | None
    sha256: str
    revised_prompt: str | None = None

    def info(self) -> dict[str, Any]:
        data = asdict(self)
        if data["revised_prompt"] is None:
            del data["revised_prompt"]
        return data


class Archive:
    """The archive root. Batches are staged in a hidden folder and renamed into place, or,
    with an object store, uploaded whole and kept in a local cache."""

    def __init__(self, root: Path, store: ObjectStore | None = None):
        self.root = Path(root)
        self.store = store

    def stage(self, batch_id: str) -> Path:
        """A fresh private folder where a batch is assembled."""
        folder = self.root / STAGING / batch_id
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        return folder

    def write_image(
        self,
        staging: Path,
        number: int,
        data: bytes,
        *,
        extension: str,
        width: int,
        height: int,
        seed: int | None,
        revised_prompt: str | None = None,
    ) -> ArchivedImage:
        name = f"{number}.{extension}"
        atomic_write_bytes(staging / name, data)
        return ArchivedImage(
            file=name,
            width=width,
            height=height,
            seed=seed,
            sha256=hashlib.sha256(data).hexdigest(),
            revised_prompt=revised_prompt,
        )

    def publish(self, staging: Path, info: dict[str, Any], created_at: datetime) -> Path:
        """Write info.json and info.md, then move the batch to its final, unique folder."""
        base = self.write_info(staging, info, created_at)
        for suffix in range(1, 10_000):
            target = self.root / (base if suffix == 1 else f"{base}-{suffix}")
            try:
                # rename() onto an existing non-empty folder fails, which is what we want:
                # two batches never share a folder.
                target.mkdir()
            except FileExistsError:
                continue
            os.replace(staging, target)
            fsync_dir(self.root)
            return target
        raise RuntimeError(f"no free folder name for {base}")

    def write_info(self, staging: Path, info: dict[str, Any], created_at: datetime) -> str:
        """info.json and info.md into the staged batch; returns its folder's base name."""
        atomic_write_text(staging / "info.json", json.dumps(info, ensure_ascii=False, indent=2))
        atomic_write_text(staging / "info.md", render_info_md(info))
        return f"{created_at.strftime('%Y%m%d-%H%M%S')}-{slugify(info.get('title') or '')}"

    async def publish_batch(
        self, staging: Path, info: dict[str, Any], created_at: datetime
    ) -> Path | str:
        """The staged batch published whole: a local folder (Path), or, with an object store,
        every file uploaded and then the folder's URL (str); ArchiveUploadError if not."""
        if self.store is None:
            return await asyncio.to_thread(self.publish, staging, info, created_at)
        base = await asyncio.to_thread(self.write_info, staging, info, created_at)
        url = await self.store.upload_folder(staging, base)
        # The staging folder becomes the cache of the uploaded files: the bots post them.
        cached = self.cache_folder(url)
        await asyncio.to_thread(_replace_folder, staging, cached)
        return url

    def discard(self, staging: Path) -> None:
        shutil.rmtree(staging, ignore_errors=True)

    def cache_folder(self, folder: str) -> Path:
        return self.root / S3_CACHE / folder.rsplit("/", 1)[-1]

    def local_folder(self, folder: str | Path | None) -> Path | None:
        """Where a batch's files can be read on this machine: its folder, or the local cache
        of an S3 batch (None when this machine holds no copy)."""
        if not folder:
            return None
        if is_remote(folder):
            cached = self.cache_folder(str(folder))
            return cached if (cached / "info.json").is_file() else None
        return Path(folder)

    async def fetch_local(self, folder: str | Path) -> Path | None:
        """A local folder holding the batch's files, downloading an S3 batch into the cache
        when this machine has no copy (a job resumed by another worker)."""
        local = self.local_folder(folder)
        if local is not None or not is_remote(folder):
            return local
        info = await self.read_info(folder)
        names = [str(image.get("file")) for image in info.get("images", [])]
        if not names:
            return None
        staging = self.stage(f"fetch-{os.getpid()}-{id(info):x}")
        try:
            for name in [*names, "info.md", "info.json"]:
                data = await self.read_file(folder, name)
                await asyncio.to_thread(atomic_write_bytes, staging / name, data)
            await asyncio.to_thread(_replace_folder, staging, self.cache_folder(str(folder)))
        finally:
            self.discard(staging)
        return self.local_folder(folder)

    async def read_file(self, folder: str | Path, name: str) -> bytes:
        """One file of a batch folder, local or in the object store (FileNotFoundError)."""
        local = self.local_folder(folder)
        if local is not None and (local / name).is_file():
            path = inside(local, local / name)
            if path is None:
                raise FileNotFoundError(name)
            return await asyncio.to_thread(path.read_bytes)
        if not is_remote(folder) or self.store is None:
            raise FileNotFoundError(name)
        try:
            key = self.store.key(str(folder), name)
        except ValueError:
            raise FileNotFoundError(name) from None
        return await self.store.get(key)

    async def write_file(self, folder: str | Path, name: str, data: bytes) -> None:
        """Add or replace one file of a published batch (an upscale, an updated info.json)."""
        if is_remote(folder):
            if self.store is None:
                raise FileNotFoundError(name)
            await self.store.put(self.store.key(str(folder), name), data)
            cached = self.local_folder(folder)
            if cached is not None:
                await asyncio.to_thread(atomic_write_bytes, cached / name, data)
            return
        await asyncio.to_thread(atomic_write_bytes, Path(folder) / name, data)

    async def remove_remote(self, folder: str) -> None:
        """Delete an S3 batch's files (info.json last, so it never looks whole meanwhile)
        and this machine's copy of them."""
        if self.store is None:
            raise FileNotFoundError(folder)
        names = await self.store.list_folder(folder)
        order = sorted(names, key=lambda name: name == "info.json")
        for name in order:
            await self.store.delete([self.store.key(folder, name)])
        await asyncio.to_thread(shutil.rmtree, self.cache_folder(folder), True)

    async def read_info(self, folder: str | Path | None) -> dict[str, Any]:
        """A batch's info.json, or {} when it cannot be read."""
        if not folder:
            return {}
        try:
            info = json.loads(await self.read_file(folder, "info.json"))
        except (OSError, ValueError):
            return {}
        return info if isinstance(info, dict) else {}


def _replace_folder(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(source, target)


MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#!|~>])")  # what can format, link or embed


def md_text(text: Any, *, newlines: bool = False) -> str:
    """Text from a user or an LLM as inert Markdown: no HTML, links, images or formatting
    (info.md is rendered by Git hosts, editors and the web app)."""
    cleaned = clean(str(text or ""), newlines=newlines)
    escaped = html.escape(cleaned, quote=False)
    return MARKDOWN_SPECIAL.sub(r"\\\1", escaped)


def render_info_md(info: dict[str, Any]) -> str:
    """info.json for people: what was asked, what was made, the images inline."""
    tags = ", ".join(md_text(tag) for tag in info.get("metatags") or [])
    description = md_text(info.get("description"), newlines=True).replace("\n", "  \n")
    lines = [
        f"# {md_text(info.get('title') or 'Untitled')}",
        "",
        description,
        "",
        f"**Tags:** {tags}",
        "",
        "## Prompt",
        "",
        f"> {md_text(info.get('prompt'))}",
        "",
    ]
    if info.get("offline_render"):
        lines += [f"**Note:** {OFFLINE_NOTE}", ""]
    if info.get("negative_prompt"):
        lines += [f"**Negative prompt:** {md_text(info['negative_prompt'])}", ""]
    lines += [
        f"**Provider:** {info.get('provider')} ({info.get('model')})  ",
        f"**Prompt source:** {info.get('prompt_source')}"
        + (f" ({info['prompt_model']})" if info.get("prompt_model") else "")
        + "  ",
        f"**Role:** {md_text(info.get('role')) or '-'}  ",
        f"**Theme:** {md_text(info.get('theme')) or '-'}  ",
        f"**Size:** {info.get('size')} (rendered at {info.get('rendered_size')})  ",
        f"**Created:** {info.get('created_at')}",
        "",
    ]
    if info.get("errors"):
        lines += ["## Errors", ""] + [f"- {md_text(error)}" for error in info["errors"]] + [""]
    lines += ["## Images", ""]
    for image in info.get("images") or []:
        seed = image.get("seed")
        caption = f"{image['file']} (seed {seed})" if seed is not None else image["file"]
        lines += [f"![{caption}]({image['file']})", ""]
    return "\n".join(lines)
