"""Hostile text from a user or an LLM: control characters, punctuation-only themes, look-alike
banned words, catastrophic patterns, and Markdown/HTML in info.md."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from imagebot.bot.cli import main
from imagebot.commands.moderation import banned_match
from imagebot.providers.base import ConfigError
from imagebot.storage.archive import render_info_md

ESCAPES = "a cat\x1b]0;PWNED\x07 \x1b[2J\u202e on a roof\x9b"
UNSAFE = ("\x1b", "\x07", "\u202e", "\x9b")


def batch_folder(output: Path) -> Path:
    [folder] = [p for p in output.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return folder


def test_control_characters_never_reach_files_or_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["generate", "1", "64x64", "--theme", ESCAPES]) == 0
    assert main(["prompts", "1", "--theme", ESCAPES]) == 0
    assert main(["export", "--out", str(tmp_path / "export.csv")]) == 0
    out, err = capsys.readouterr()
    folder = batch_folder(tmp_path / "output")
    written = [
        (folder / "info.json").read_text("utf-8"),
        (folder / "info.md").read_text("utf-8"),
        (tmp_path / "output" / "batch_prompts.csv").read_text("utf-8"),
        (tmp_path / "export.csv").read_text("utf-8"),
        out,
        err,
    ]
    for text in written:
        assert not any(char in text for char in UNSAFE), repr(text[:200])
    info = json.loads(written[0])
    assert info["theme"] == "a cat]0;PWNED [2J on a roof"
    assert "]0;PWNED" in json.dumps(info, ensure_ascii=False)  # escaped into plain text
    assert "\\u001b" not in written[0]


@pytest.mark.parametrize("theme", ["!!!???...;;;", ".", "—…", "  ,  "])
def test_a_theme_without_a_letter_or_digit_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], theme: str
) -> None:
    status = main(["generate", "1", "64x64", "--theme", theme])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "no letter or digit" in err
    assert not (tmp_path / "output").exists() or not any((tmp_path / "output").iterdir())


def test_non_latin_and_digit_themes_are_themes(tmp_path: Path) -> None:
    assert main(["prompts", "1", "--theme", "Кот на крыше"]) == 0
    assert main(["prompts", "1", "--theme", "1999"]) == 0


@pytest.mark.parametrize("disguise", ["gоre", "ｇｏｒｅ", "go\u200bre", "ɡore", "GORE", "Gore!"])
def test_banned_words_see_through_look_alikes(disguise: str) -> None:
    assert banned_match([f"a {disguise} scene"], ("gore",)) == "gore"


def test_banned_words_do_not_match_inside_other_words() -> None:
    assert banned_match(["a gorgeous gorenje kitchen"], ("gore",)) is None
    assert banned_match(["blood bath at dawn"], ("blood bath",)) == "blood bath"


def test_a_catastrophic_pattern_is_matched_in_linear_time() -> None:
    # `(a+)+$` backtracks exponentially in Python's re on 34 a's and a mismatch; RE2 does not.
    assert banned_match(["a" * 34 + "!"], ("/(a+)+$/",)) is None
    assert banned_match(["aaaa"], ("/(a+)+$/",)) == "/(a+)+$/"


def test_a_pattern_that_cannot_be_bounded_is_refused_at_start_up(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match="IMAGEBOT_BANNED_WORDS"):
        banned_match(["x"], ("/(a)\\1/",))
    monkeypatch.setenv("IMAGEBOT_BANNED_WORDS", "/(?<!x)gore/")
    assert main(["prompts", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "IMAGEBOT_BANNED_WORDS" in err and "lookarounds" in err


def test_info_md_escapes_markdown_and_html() -> None:
    info = {
        "title": "<script>alert(1)</script>",
        "description": "![x](http://tracker/p.png) [click](javascript:alert(1))",
        "metatags": ["**bold**"],
        "prompt": "<img src=x onerror=alert(1)>",
        "images": [{"file": "1.png", "seed": 1}],
    }
    markdown = render_info_md(info)
    assert "<script>" not in markdown and "<img" not in markdown
    assert "](http://tracker" not in markdown and "](javascript:" not in markdown
    assert "**bold**" not in markdown
    assert "&lt;script&gt;" in markdown and "![1.png (seed 1)](1.png)" in markdown


def test_export_csv_cells_are_clean(tmp_path: Path) -> None:
    assert main(["generate", "1", "64x64", "--theme", '=HYPERLINK("x")\x1b']) == 0
    assert main(["export", "--out", str(tmp_path / "e.csv")]) == 0
    [row] = list(csv.DictReader(io.StringIO((tmp_path / "e.csv").read_text("utf-8"))))
    assert "\x1b" not in "".join(row.values())
