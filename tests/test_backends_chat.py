"""Self-hosted and distributed backends as a chat user meets them: fallback and queue progress."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tests.fakes.horde_server import FakeHorde
from tests.recording_port import start_harness


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


@pytest.mark.slow
async def test_unavailable_webui_falls_back_to_the_horde_and_says_so(tmp_path: Path) -> None:
    async with FakeHorde(queue_position=1) as horde:
        bot = await start_harness(
            tmp_path / "output",
            {
                "STABLE_DIFFUSION_URL": closed_port_url(),
                "HORDE_URL": horde.url,
                "IMAGEBOT_FALLBACK": "stable-diffusion,horde,local",
            },
        )
        try:
            port = await bot.say("generate", {"count": 2, "size": "256x256"})
            await bot.runtime.drain()
        finally:
            await bot.close()
    [post] = port.posts
    assert post.provider == "horde" and len(post.images) == 2
    assert post.note and "stable-diffusion" in post.note
    info = json.loads((post.images[0].parent / "info.json").read_text("utf-8"))
    assert info["provider"] == "horde" and info["fallback_from"] == ["stable-diffusion"]
    # The Horde's own words about its queue reach the user while they wait.
    assert any("Horde" in (call.text or "") for call in port.of("progress"))
