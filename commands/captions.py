"""What the bot says about a batch: the post with its buttons, progress, failures, notes."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from imagebot.commands.ports import BatchPost, Button, ButtonId

BUTTONS = (("🎲 Re-roll", "reroll"), ("🔁 Same prompt", "again"), ("🗑 Delete", "delete"))
PREVIEW_TITLES = 5


MAX_IMAGE_BUTTONS = 5  # one chat row


def buttons(batch_id: str, images: int = 0) -> list[list[Button]]:
    """The rows of buttons under a posted batch: re-roll, same prompt again, delete; then
    U<n> (upscale image n) for up to five images."""
    rows = [[Button(label, ButtonId(action, batch_id)) for label, action in BUTTONS]]
    count = min(images, MAX_IMAGE_BUTTONS)
    if count:
        rows.append(
            [Button(f"U{n}", ButtonId("upscale", batch_id, n)) for n in range(1, count + 1)]
        )
    return rows


def request_failed_text(error: Exception, *, scheduled: bool = False) -> str:
    """Why a queued request produced nothing: one message, phrased here for every flow."""
    if scheduled:
        return f"Today's daily post could not be made: {error}"
    return f"Your request failed: {error}"


def rendering_text(done: int, total: int) -> str:
    return f"Rendering {done}/{total} …"


def waiting_text(place: int) -> str:
    return f"Queued: you are number {place} in the queue. It starts as soon as a worker is free."


def fallback_note(fallback_from: list[str], provider: str) -> str | None:
    if not fallback_from:
        return None
    names = ", ".join(fallback_from)
    verb = "was" if len(fallback_from) == 1 else "were"
    return f"{names} {verb} unavailable; rendered with {provider} instead"


def summarise_errors(errors: list[str]) -> list[str]:
    """One line per distinct failure, with how many images it cost when more than one."""
    counts = Counter(errors)
    return [f"{error} ({n} images)" if n > 1 else error for error, n in counts.items()]


def read_info(folder: str | Path | None) -> dict[str, Any]:
    """A batch's info.json, or {} when the folder is gone (the archive is the user's)."""
    if not folder:
        return {}
    try:
        return json.loads((Path(folder) / "info.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def batch_post(
    row: dict[str, Any],
    *,
    asked: int,
    errors: list[str],
    fallback_from: list[str],
    mention: str | None = None,
    spoiler: bool = False,
) -> BatchPost:
    """The post of an archived batch, built from its index row and info.json."""
    folder = Path(row["folder"])
    info = read_info(folder)
    files = [image["file"] for image in info.get("images", [])]
    if not files:  # info.json unreadable: the images are still the numbered files
        numbered = [path for path in folder.iterdir() if path.stem.isdigit()]
        files = [path.name for path in sorted(numbered, key=lambda path: int(path.stem))]
    lines = summarise_errors(errors)
    if lines and len(files) < asked:
        lines.insert(0, f"{asked - len(files)} of {asked} images could not be rendered:")
    return BatchPost(
        batch_id=row["id"],
        title=row.get("title") or "Untitled",
        description=row.get("description") or "",
        tags=json.loads(row.get("metatags") or "[]"),
        provider=row.get("provider") or "",
        model=row.get("model") or "",
        images=[folder / name for name in files],
        buttons=buttons(row["id"], len(files)),
        errors=lines,
        note=fallback_note(fallback_from, row.get("provider") or ""),
        mention=mention,
        spoiler=spoiler,
    )


def failure_text(title: str | None, errors: list[str], fallback_from: list[str]) -> str:
    """A request that produced no image: what failed and why, in one message."""
    what = f"“{title}”" if title else "your request"
    lines = [f"No image could be rendered for {what}:"]
    lines += [f"• {line}" for line in summarise_errors(errors) or ["unknown error"]]
    if fallback_from:
        lines.append(f"(tried in turn: {', '.join(fallback_from)})")
    return "\n".join(lines)


def prompts_preview(titles: list[str], asked: int) -> str:
    """The text under prompts.csv: how many, and the first few titles."""
    shown = [f"• {title}" for title in titles[:PREVIEW_TITLES]]
    more = len(titles) - len(shown)
    head = f"{len(titles)} prompt specs"
    if len(titles) < asked:
        head += f" (asked for {asked}; {asked - len(titles)} hit the banned-words list)"
    lines = [head + ":", *shown]
    if more > 0:
        lines.append(f"… and {more} more in prompts.csv")
    return "\n".join(lines)
