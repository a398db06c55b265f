"""CSV of prompt specs and archive exports (SPEC §5): RFC 4180, UTF-8, formulas neutralised."""

from __future__ import annotations

import csv
import fcntl
import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from imagebot.storage.text import clean

PROMPT_COLUMNS = ["title", "description", "metatags", "prompt"]
EXPORT_COLUMNS = PROMPT_COLUMNS + ["created_at", "provider", "model", "requested_by", "folder"]
FORMULA_STARTS = "=+-@\t\r"


def neutralise(cell: Any) -> str:
    """A cell without control characters; one a spreadsheet would run as a formula gets a
    leading apostrophe."""
    if cell is None:
        return ""
    raw = str(cell)
    text = clean(raw, newlines=True)  # no terminal escapes reach a spreadsheet either
    if raw[:1] in FORMULA_STARTS or text[:1] in FORMULA_STARTS:
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


def csv_header(path: Path) -> list[str] | None:
    """The first row of an existing, non-empty CSV file; None when there is none yet."""
    if not path.is_file() or path.stat().st_size == 0:
        return None
    with path.open(encoding="utf-8", newline="") as stream:
        return next(csv.reader(stream), None)


def append_prompt_rows(path: Path, rows: list[dict[str, str]]) -> None:
    """Append rows to a prompts CSV, writing the header when the file is new or empty.

    One write of the whole chunk under an exclusive lock on the file, so processes appending
    at once neither interleave rows nor both write a header; earlier rows are never touched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as stream:
        fcntl.flock(stream, fcntl.LOCK_EX)
        size = os.fstat(stream.fileno()).st_size
        text = prompt_rows_csv(rows, header=size == 0)
        if size:
            stream.seek(-1, os.SEEK_END)
            if stream.read(1) != b"\n":
                text = "\r\n" + text
        stream.write(text.encode("utf-8"))
        stream.flush()


def write_export(rows: Iterable[tuple[Any, ...]], stream: TextIO) -> int:
    """Stream export rows (tuples in EXPORT_COLUMNS order) as CSV; returns the row count."""
    writer = _writer(stream)
    writer.writerow(EXPORT_COLUMNS)
    count = 0
    for row in rows:
        writer.writerow([neutralise(cell) for cell in row])
        count += 1
    return count
