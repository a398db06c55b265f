"""`export`: the archive index as CSV, to a file or a stream."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from imagebot.providers.base import UsageError
from imagebot.storage.csv_io import write_export
from imagebot.storage.files import atomic_file

if TYPE_CHECKING:
    from imagebot.storage.index import Index


def parse_since(text: str | None) -> str | None:
    """`YYYY-MM-DD` -> the ISO prefix batches are compared with; UsageError otherwise."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text.strip()).isoformat()
    except ValueError:
        raise UsageError(f"--since must be a date as YYYY-MM-DD, got {text!r}") from None


def export_archive(
    index: Index,
    *,
    since: str | None = None,
    out: str | None = None,
    stream: TextIO | None = None,
    platform: str | None = None,
    chat_id: str | None = None,
) -> int:
    """Write the export to `out` (atomically) or to `stream`; returns the rows written.

    Blocking (a large archive streams for a second or more): the chat runs it in a thread.
    """
    with index.reader() as conn:
        rows = index.export_rows(conn, since=since, platform=platform, chat_id=chat_id)
        if out is None:
            assert stream is not None
            return write_export(rows, stream)
        with atomic_file(Path(out), "w", encoding="utf-8", newline="") as temp:
            return write_export(rows, temp)
