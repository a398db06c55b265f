"""The command line as a user drives it: offline batches, usage errors, prompts, export."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from imagebot.bot.cli import main
from imagebot.bot.legacy_cli import translate
from imagebot.storage.archive import md_text

ROOT = Path(__file__).resolve().parent.parent
INFO_KEYS = {
    "id",
    "title",
    "description",
    "metatags",
    "prompt",
    "negative_prompt",
    "prompt_source",
    "prompt_model",
    "provider",
    "model",
    "size",
    "rendered_size",
    "seed",
    "role",
    "theme",
    "created_at",
    "requested_by",
    "settings",
    "images",
}


def batch_folders(output: Path) -> list[Path]:
    if not output.exists():
        return []
    return sorted(p for p in output.iterdir() if p.is_dir() and not p.name.startswith("."))


def test_offline_generate_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["generate", "3", "320x200", "--theme", "a foggy harbour"])
    out, err = capsys.readouterr()
    assert status == 0, err
    folders = batch_folders(tmp_path / "output")
    assert len(folders) == 1
    assert out.strip() == str(folders[0])
    folder = folders[0]
    info = json.loads((folder / "info.json").read_text("utf-8"))
    assert INFO_KEYS <= info.keys()
    assert info["provider"] == "local" and info["prompt_source"] == "templates"
    assert info["theme"] == "a foggy harbour"
    assert info["size"] == "320x200" and info["requested_by"] is None
    assert info["offline_render"] is True
    assert [image["file"] for image in info["images"]] == ["1.png", "2.png", "3.png"]
    for image in info["images"]:
        with Image.open(folder / image["file"]) as picture:
            assert picture.size == (320, 200)
        assert set(image) >= {"file", "width", "height", "seed", "sha256"}
    assert 5 <= len(info["metatags"]) <= 12
    assert md_text(info["title"]) in (folder / "info.md").read_text("utf-8")


def test_batches_and_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "1", "128x128", "--batches", "3", "--role", "painter"]) == 0
    capsys.readouterr()
    assert len(batch_folders(tmp_path / "output")) == 3
    assert main(["export", "--out", str(tmp_path / "archive.csv")]) == 0
    rows = list(csv.DictReader((tmp_path / "archive.csv").open(encoding="utf-8", newline="")))
    assert len(rows) == 3
    assert {row["provider"] for row in rows} == {"local"}
    assert all(Path(row["folder"]).is_dir() for row in rows)
    assert capsys.readouterr().out == f"3 batches exported to {tmp_path / 'archive.csv'}\n"
    assert main(["export"]) == 0
    assert capsys.readouterr().out.startswith("title,description,metatags,prompt,created_at")


@pytest.mark.parametrize(
    "argv",
    [
        ["generate", "0"],
        ["generate", "11"],
        ["generate", "four"],
        ["generate", "2", "512"],
        ["generate", "2", "512x99999"],
        ["generate", "2", "--provider", "midjourney"],
        ["generate", "2", "--provider", "dalle"],
        ["generate", "2", "--prompt-source", "gpt"],
        ["generate", "2", "--role", "no-such-role"],
        ["generate", "2", "--batches", "0"],
        ["generate", "2", "--bogus-flag"],
        ["prompts", "0"],
        ["export", "--since", "yesterday"],
        [],
    ],
)
def test_usage_errors_exit_2_and_create_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("imagebot: ") and err.count("\n") == 1
    assert "Traceback" not in err
    assert not (tmp_path / "output").exists()


def test_bad_setting_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("IMAGEBOT_MAX_IMAGES", "lots")
    assert main(["generate", "1"]) == 2
    err = capsys.readouterr().err
    assert "IMAGEBOT_MAX_IMAGES" in err and err.count("\n") == 1


def test_prompts_append_to_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prompts", "4", "--theme", "lighthouses"]) == 0
    assert main(["prompts", "3"]) == 0
    path = tmp_path / "output" / "batch_prompts.csv"
    rows = list(csv.DictReader(io.StringIO(path.read_text("utf-8"), newline="")))
    assert len(rows) == 7
    assert all(row["title"] and row["prompt"] and row["metatags"] for row in rows)
    assert capsys.readouterr().out.strip().endswith(f"3 prompt specs appended to {path}")


def test_main_py_keeps_the_original_interface() -> None:
    assert translate(["10", "1024x576", "--stable-diffusion"]) == [
        "generate",
        "10",
        "1024x576",
        "--provider",
        "stable-diffusion",
    ]
    assert translate(["10", "--only-prompts"]) == ["prompts", "10"]
    assert translate(["10", "512x512", "--only-prompts"]) == ["prompts", "10"]
    assert translate(["2", "--local", "--dalle"])[-1] == "local"


@pytest.mark.slow
def test_main_py_runs_offline(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "2", "256x256", "--local"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    folder = Path(done.stdout.strip())
    assert sorted(p.name for p in folder.iterdir()) == ["1.png", "2.png", "info.json", "info.md"]
    bad = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "0", "--dalle"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "count" in bad.stderr
