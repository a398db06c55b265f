"""Every render backend through the command line, each against its loopback fake."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from imagebot.bot.cli import main
from tests.fakes.comfyui_server import FakeComfyUI
from tests.fakes.horde_server import FakeHorde
from tests.fakes.stability_server import FakeStability
from tests.fakes.threaded import FakeOnThread
from tests.fakes.webui_server import FakeWebUI

BACKENDS: dict[str, tuple[Callable[[], object], Callable[[object], dict[str, str]]]] = {
    "stable-diffusion": (FakeWebUI, lambda fake: {"STABLE_DIFFUSION_URL": fake.url}),
    "stability": (
        FakeStability,
        lambda fake: {"STABILITY_API_KEY": "sk-test", "STABILITY_API_HOST": fake.url},
    ),
    "comfyui": (FakeComfyUI, lambda fake: {"COMFYUI_URL": fake.url}),
    "horde": (lambda: FakeHorde(queue_position=0), lambda fake: {"HORDE_URL": fake.url}),
}


@pytest.mark.parametrize("provider", list(BACKENDS))
def test_backend_renders_a_batch_from_the_cli(
    provider: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    make_fake, environment = BACKENDS[provider]
    with FakeOnThread(make_fake) as fake:
        for name, value in environment(fake).items():
            monkeypatch.setenv(name, value)
        status = main(["generate", "2", "320x240", "--provider", provider, "--seed", "7"])
        out, err = capsys.readouterr()
    assert status == 0, err
    folder = Path(out.strip())
    info = json.loads((folder / "info.json").read_text("utf-8"))
    assert info["provider"] == provider and info["size"] == "320x240"
    assert [image["file"] for image in info["images"]] == ["1.png", "2.png"]
    for image in info["images"]:
        with Image.open(folder / image["file"]) as picture:
            assert picture.size == (320, 240)
