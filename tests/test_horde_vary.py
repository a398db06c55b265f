"""Horde Vary: img2img with source_image, source_processing and denoising_strength."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator

import pytest
from PIL import Image

from imagebot.providers.base import ProviderError, RenderRequest, Size
from imagebot.providers.horde import HordeProvider
from tests.fakes.horde_server import FakeHorde

FAST = {"poll_interval": 0.01, "max_poll_interval": 0.02}


@pytest.fixture
async def fake() -> AsyncIterator[FakeHorde]:
    async with FakeHorde(queue_position=0) as server:
        yield server


def picture(width: int = 512, height: int = 512) -> Image.Image:
    image = Image.new("RGB", (width, height), (12, 200, 99))
    image.putpixel((5, 5), (255, 0, 0))
    return image


def png_of(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def vary(init: bytes, strength: float | None = 0.55) -> RenderRequest:
    return RenderRequest(
        prompt="a lighthouse in a storm",
        negative_prompt="",
        size=Size(512, 512),
        seeds=(321,),
        settings={"steps": 25},
        init_image=init,
        strength=strength,
    )


async def test_vary_sends_the_picture_as_a_lossless_source_image(session, fake) -> None:
    original = picture()
    provider = HordeProvider(session, "registered-key", fake.url, **FAST)
    assert provider.accepts_init_image is True
    [image] = await provider.render(vary(png_of(original)))
    [job] = fake.jobs.values()
    assert job.payload["source_processing"] == "img2img"
    assert job.payload["params"]["denoising_strength"] == 0.55
    sent = base64.b64decode(job.payload["source_image"])
    with Image.open(io.BytesIO(sent)) as decoded:
        assert decoded.format == "WEBP"
        assert decoded.convert("RGB").tobytes() == original.tobytes()
    with Image.open(io.BytesIO(image.data)) as result:  # the worker used the source
        assert result.convert("RGB").getpixel((0, 0)) == pytest.approx((12, 200, 99), abs=8)
    assert image.seed == 321


async def test_no_strength_means_the_spec_default_and_it_is_clamped(session, fake) -> None:
    provider = HordeProvider(session, "registered-key", fake.url, **FAST)
    await provider.render(vary(png_of(picture()), None))
    await provider.render(vary(png_of(picture()), 0.0))
    strengths = [j.payload["params"]["denoising_strength"] for j in fake.jobs.values()]
    assert strengths == [0.55, 0.01]


async def test_a_plain_render_sends_no_source_image(session, fake) -> None:
    provider = HordeProvider(session, "registered-key", fake.url, **FAST)
    request = RenderRequest("a lighthouse", "", Size(512, 512), (1,), {"steps": 20})
    await provider.render(request)
    [job] = fake.jobs.values()
    assert "source_image" not in job.payload
    assert "denoising_strength" not in job.payload["params"]


async def test_the_fake_refuses_an_unreadable_source_image(session, fake) -> None:
    provider = HordeProvider(session, "registered-key", fake.url, **FAST)
    payload = {"prompt": "x", "params": {}, "source_image": base64.b64encode(b"junk").decode()}
    with pytest.raises(ProviderError, match="ImageValidationFailed"):
        await provider._call("POST", "/generate/async", json=payload, attempts=1)


def test_horde_has_no_upscaler_of_its_own() -> None:
    assert not hasattr(HordeProvider, "upscale")
