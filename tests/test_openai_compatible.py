"""The `dalle` provider on an OpenAI-compatible image server (LocalAI-like): no key, any model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from imagebot.bot.cli import main
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.threaded import FakeOnThread

MODEL = "stablediffusion-cpp"  # not an OpenAI model name


def test_cli_generates_on_a_compatible_server_with_its_own_model(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeOnThread(lambda: FakeOpenAI(accept_any_image_model=True)) as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        monkeypatch.setenv("IMAGEBOT_IMAGE_MODEL", MODEL)
        monkeypatch.setenv("IMAGEBOT_PROMPT_SOURCE", "templates")
        status = main(["generate", "2", "512x512", "--provider", "dalle"])
        sent = [r.json for r in fake.image_requests]
    out = capsys.readouterr()
    assert status == 0, out.err
    folders = [Path(line) for line in out.out.splitlines() if line.strip()]
    assert len(folders) == 1
    folder = folders[0] if folders[0].is_absolute() else tmp_path / folders[0]
    images = sorted(p.name for p in folder.iterdir() if p.suffix == ".png")
    assert images == ["1.png", "2.png"]
    for name in images:
        with Image.open(folder / name) as image:
            assert image.size == (512, 512)
    info = json.loads((folder / "info.json").read_text(encoding="utf-8"))
    assert info["provider"] == "dalle"
    assert info["model"] == MODEL
    assert len(info["images"]) == 2
    assert {body["model"] for body in sent} == {MODEL}
