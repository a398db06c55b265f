"""A provider that returns broken images (SPEC §6): the good ones are kept and archived, each bad
one is reported in one line, and a decompression bomb is refused before it is decoded."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from pathlib import Path

import pytest
from aiohttp import web

from imagebot.bot.cli import main
from tests.fakes.threaded import FakeOnThread
from tests.fakes.webui_server import FakeWebUI, make_png


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims `width`x`height` (the size a bomb announces) with almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


class BrokenWebUI(FakeWebUI):
    """A WebUI whose answers carry, image by image, the bytes queued in `answers`."""

    answers: list[bytes]

    async def _render(self, request: web.Request, mode: str) -> web.StreamResponse:
        response = await super()._render(request, mode)
        if response.status != 200:
            return response
        data = json.loads(response.body)
        data["images"] = [base64.b64encode(self.answers.pop(0)).decode() for _ in data["images"]]
        return web.json_response(data)


@pytest.mark.parametrize(
    ("bad", "said"),
    [
        (b"", "was an empty file instead of an image"),
        (b"<html>Internal error</html>", "was a file that is not a readable image"),
        (_png_header(20000, 20000), "larger than the 67 million pixels this bot decodes"),
    ],
)
def test_good_images_are_kept_and_each_bad_one_is_one_line(
    bad: bytes, said: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    def make_fake() -> BrokenWebUI:
        fake = BrokenWebUI()
        fake.answers = [make_png(64, 64, 1), bad, make_png(64, 64, 3), bad]
        return fake

    with FakeOnThread(make_fake) as fake:
        monkeypatch.setenv("STABLE_DIFFUSION_URL", fake.url)
        monkeypatch.setenv("IMAGEBOT_OUTPUT_DIR", str(tmp_path / "output"))
        status = main(["generate", "4", "64x64", "--provider", "stable-diffusion"])
        out, err = capsys.readouterr()
    folder = Path(out.strip().splitlines()[0])
    info = json.loads((folder / "info.json").read_text("utf-8"))
    assert [image["file"] for image in info["images"]] == ["1.png", "2.png"]
    assert info["status"] == "partial"
    assert "Traceback" not in err and "BytesIO" not in err
    problems = [line for line in err.splitlines() if said in line]
    assert len(problems) == 2, err  # one line for each bad image
    assert status == 1, err  # some of the work failed (SPEC §3)
