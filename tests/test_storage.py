"""The archive: safe folder names, whole-or-nothing batches, CSV quoting and export."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from imagebot.storage.archive import STAGING, Archive
from imagebot.storage.csv_io import EXPORT_COLUMNS, append_prompt_rows, neutralise, write_export
from imagebot.storage.files import slugify
from imagebot.storage.index import Index

MOMENT = datetime(2026, 11, 25, 18, 30, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    "title",
    ["../../x", "/etc/passwd", "a" * 300, "🌊🌊 Ocean 🐙 Dreams", "?!.../\\::**", "", "..", "CON"],
)
def test_hostile_titles_stay_inside_the_archive(tmp_path: Path, title: str) -> None:
    archive = Archive(tmp_path / "output")
    staging = archive.stage("b1")
    archive.write_image(staging, 1, b"png", extension="png", width=1, height=1, seed=1)
    folder = archive.publish(staging, {"title": title, "images": []}, MOMENT)
    assert folder.resolve().parent == (tmp_path / "output").resolve()
    name = folder.name
    assert name.startswith("20261125-183005-")
    slug = name.removeprefix("20261125-183005-")
    assert 1 <= len(slug) <= 60
    assert all(c.islower() or c.isdigit() or c == "-" for c in slug)
    assert (folder / "1.png").read_bytes() == b"png"


def test_slug_keeps_words() -> None:
    assert slugify("Ocean Dreams: A Tale") == "ocean-dreams-a-tale"
    assert slugify("Café au lait") == "cafe-au-lait"
    assert slugify("!!!") == "untitled"


def test_two_batches_with_one_name_get_suffixes(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    folders = []
    for batch in ("a", "b", "c"):
        staging = archive.stage(batch)
        folders.append(archive.publish(staging, {"title": "Same"}, MOMENT))
    assert [f.name for f in folders] == [
        "20261125-183005-same",
        "20261125-183005-same-2",
        "20261125-183005-same-3",
    ]
    assert not (tmp_path / STAGING / "a").exists()


def test_info_files_are_written(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    staging = archive.stage("b")
    image = archive.write_image(staging, 1, b"x", extension="png", width=4, height=3, seed=9)
    info = {
        "title": "Harbour",
        "description": "Fog.",
        "metatags": ["fog", "harbour"],
        "prompt": "a harbour",
        "provider": "local",
        "model": "m",
        "images": [image.info()],
    }
    folder = archive.publish(staging, info, MOMENT)
    assert json.loads((folder / "info.json").read_text("utf-8"))["images"][0]["seed"] == 9
    markdown = (folder / "info.md").read_text("utf-8")
    assert "# Harbour" in markdown and "fog, harbour" in markdown and "![1.png" in markdown


@pytest.mark.parametrize("cell", ["=1+2", "+SUM(A1)", "-2", "@cmd"])
def test_formulas_are_neutralised(cell: str) -> None:
    assert neutralise(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["\tx", "\rx", "\t=1+2"])
def test_a_leading_tab_or_return_is_neutralised_and_dropped(cell: str) -> None:
    assert neutralise(cell) == "'" + cell.lstrip("\t\r")


def test_cells_carry_no_control_characters() -> None:
    assert neutralise("a cat\x1b]0;PWNED\x07\x1b[2J\u202e") == "a cat]0;PWNED[2J"
    assert neutralise("two\nlines") == "two\nlines"  # RFC 4180 quotes a newline


def test_csv_appends_and_quotes(tmp_path: Path) -> None:
    path = tmp_path / "batch_prompts.csv"
    first = {
        "title": 'A "quoted", title',
        "description": "two\nlines",
        "metatags": "a, b",
        "prompt": "=HYPERLINK()",
    }
    append_prompt_rows(path, [first])
    append_prompt_rows(path, [{**first, "title": "Second"}])
    rows = list(csv.DictReader(io.StringIO(path.read_text("utf-8"), newline="")))
    assert [r["title"] for r in rows] == ['A "quoted", title', "Second"]
    assert rows[0]["description"] == "two\nlines"
    assert rows[0]["prompt"] == "'=HYPERLINK()"
    assert path.read_text("utf-8").count("title,description,metatags,prompt") == 1


def test_export_streams_rows(tmp_path: Path) -> None:
    index = Index(tmp_path / "archive.db")
    for number in range(3):
        index.start_batch(
            {
                "id": f"b{number}",
                "title": f"T{number}",
                "metatags": '["x", "y"]',
                "created_at": f"2026-11-2{number}T00:00:00Z",
                "provider": "local",
                "platform": "discord",
                "user_name": "ann",
                "user_id": "7",
                "chat_id": "5",
            }
        )
        index.finish_batch(f"b{number}", status="complete", error=None, folder=f"/o/{number}")
    index.start_batch({"id": "failed", "title": "F", "created_at": "2026-11-23T00:00:00Z"})
    index.finish_batch("failed", status="failed", error="boom")
    out = io.StringIO()
    with index.reader() as conn:
        count = write_export(index.export_rows(conn, since="2026-11-21"), out)
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert count == 2
    assert rows[0] == EXPORT_COLUMNS
    assert rows[1][0] == "T1" and rows[1][2] == "x, y"
    assert rows[1][EXPORT_COLUMNS.index("requested_by")] == "discord:ann (7)"
