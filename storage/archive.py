"""Batch folders: images, info.json and info.md, published whole or not at all (SPEC §4)."""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import shutil
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from imagebot.storage.files import atomic_write_bytes, atomic_write_text, fsync_dir, slugify
from imagebot.storage.text import clean

STAGING = ".staging"
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
    """The archive root. Batches are staged in a hidden folder and renamed into place."""

    def __init__(self, root: Path):
        self.root = Path(root)

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
        atomic_write_text(staging / "info.json", json.dumps(info, ensure_ascii=False, indent=2))
        atomic_write_text(staging / "info.md", render_info_md(info))
        base = f"{created_at.strftime('%Y%m%d-%H%M%S')}-{slugify(info.get('title') or '')}"
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

    def discard(self, staging: Path) -> None:
        shutil.rmtree(staging, ignore_errors=True)


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
