"""CSV of prompt specs and archive exports (SPEC §5): RFC 4180, UTF-8, formulas neutralised."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

PROMPT_COLUMNS = ["title", "description", "metatags", "prompt"]
EXPORT_COLUMNS = PROMPT_COLUMNS + ["created_at", "provider", "model", "requested_by", "folder"]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: Any) -> str:
    """A cell a spreadsheet would run as a formula gets a leading apostrophe."""
    text = "" if cell is None else str(cell)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def _writer(stream: TextIO) -> Any:
    return csv.writer(stream, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)


def prompt_rows_csv(rows: Iterable[dict[str, str]], header: bool = True) -> str:
    """Prompt spec rows as CSV text."""
    buffer = io.StringIO()
    writer = _writer(buffer)
    if header:
        writer.writerow(PROMPT_COLUMNS)
    for row in rows:
        writer.writerow([neutralise(row.get(column)) for column in PROMPT_COLUMNS])
    return buffer.getvalue()


def append_prompt_rows(path: Path, rows: list[dict[str, str]]) -> None:
    """Append rows to a prompts CSV, writing the header when the file is new or empty.

    One write of the whole chunk, flushed and synced, so earlier rows are never touched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    new_file = not path.exists() or path.stat().st_size == 0
    text = prompt_rows_csv(rows, header=new_file)
    if not new_file:
        with path.open("rb") as existing:
            existing.seek(-1, 2)
            if existing.read(1) not in (b"\n",):
                text = "\r\n" + text
    with path.open("a", encoding="utf-8", newline="") as stream:
        stream.write(text)
        stream.flush()


def requested_by_label(row: dict[str, Any]) -> str:
    """`platform:user_name (user_id)` for exports; empty for the command line."""
    if not row.get("platform") or row.get("platform") == "cli":
        return row.get("platform") or ""
    name = row.get("user_name") or ""
    return f"{row['platform']}:{name} ({row.get('user_id') or ''})"


def export_lines(batches: Iterable[dict[str, Any]]) -> Iterator[str]:
    """Archive rows as CSV text, a chunk at a time, header first."""
    buffer = io.StringIO()
    writer = _writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    for count, row in enumerate(batches, 1):
        tags = row.get("metatags") or "[]"
        try:
            tags = ", ".join(json.loads(tags))
        except (TypeError, ValueError):
            pass
        values = {**row, "metatags": tags, "requested_by": requested_by_label(row)}
        writer.writerow([neutralise(values.get(column)) for column in EXPORT_COLUMNS])
        if count % 2000 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def write_export(batches: Iterable[dict[str, Any]], stream: TextIO) -> int:
    """Stream an export into `stream`; returns the number of data rows written."""
    rows = 0

    def counted() -> Iterator[dict[str, Any]]:
        nonlocal rows
        for row in batches:
            rows += 1
            yield row

    for chunk in export_lines(counted()):
        stream.write(chunk)
    return rows
