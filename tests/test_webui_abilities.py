"""The WebUI's Vary, Upscale, batching and hang handling, each against the WebUI fake."""

from __future__ import annotations

import base64
import io
from dataclasses import replace

import pytest
from PIL import Image

from imagebot.providers.base import ProviderError, RenderRequest, Size
from imagebot.providers.webui import WebUIProvider
from imagebot.providers.webui_watch import WatchTimes
from tests.fakes.webui_server import FakeWebUI, make_png

SMALL = Size(64, 64)


def ask(*seeds: int) -> RenderRequest:
    return RenderRequest(prompt="a lighthouse", negative_prompt="", size=SMALL, seeds=seeds)


async def test_a_batch_on_one_server_is_one_batched_request(session) -> None:
    async with FakeWebUI() as fake:
        provider = WebUIProvider(session, [fake.url], base_delay=0.01)
        images = await provider.render(ask(7, 8, 9, 10))
    assert [image.seed for image in images] == [7, 8, 9, 10]
    [payload] = fake.payloads("txt2img")
    assert payload["batch_size"] == 4 and payload["seed"] == 7
    assert fake.jobs == 1


async def test_vary_sends_exactly_the_init_image_to_img2img(session) -> None:
    init = make_png(64, 64, 5, "image 2")
    async with FakeWebUI() as fake:
        provider = WebUIProvider(session, [fake.url], base_delay=0.01)
        assert provider.accepts_init_image
        [image] = await provider.render(replace(ask(11), init_image=init, strength=0.55))
    [payload] = fake.payloads("img2img")
    assert base64.b64decode(payload["init_images"][0]) == init
    assert payload["denoising_strength"] == 0.55 and payload["seed"] == 11
    assert image.seed == 11 and image.data


async def test_upscale_doubles_the_image_with_the_servers_upscaler(session) -> None:
    async with FakeWebUI() as fake:
        provider = WebUIProvider(session, [fake.url], base_delay=0.01, upscaler="no such one")
        upscaled = await provider.upscale(make_png(64, 48, 1), 2)
    [payload] = fake.payloads("extra-single-image")
    assert payload["upscaling_resize"] == 2 and payload["upscaler_1"] not in ("None", "")
    assert upscaled.upscaler == payload["upscaler_1"]
    with Image.open(io.BytesIO(upscaled.data)) as picture:
        assert picture.size == (128, 96) == (upscaled.width, upscaled.height)


async def test_a_hung_server_is_given_up_within_its_budget_with_a_clear_error(session) -> None:
    notes: list[str] = []
    async with FakeWebUI(frozen=True) as fake:
        provider = WebUIProvider(
            session,
            [fake.url],
            timeout=1.0,
            info_timeout=0.2,
            watch_times=WatchTimes(poll=0.05, answer=0.1, hang=0.3, idle=0.3),
            base_delay=0.01,
        )
        with pytest.raises(ProviderError) as raised:
            await provider.render(ask(1, 2), progress=notes.append)
    # A wedged server is named in one sentence after a fraction of a second, not 3 x 600 s.
    assert "waiting for the WebUI at 127.0.0.1" in str(raised.value)
    assert "no answer for" in str(raised.value)
