"""Stability Vary (v2beta image-to-image) and Upscale (v2beta fast upscale) against the fake."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import pytest
from PIL import Image

from imagebot.providers.base import ProviderError, Refused, RenderRequest, Size
from imagebot.providers.stability import StabilityProvider
from tests.fakes.stability_server import FakeStability

KEY = "sk-test-0123456789abcdef"
SQUARE = Size(1024, 1024)


@pytest.fixture
async def fake() -> AsyncIterator[FakeStability]:
    async with FakeStability(api_key=KEY) as server:
        yield server


def png(width: int, height: int, colour: tuple[int, int, int] = (200, 40, 90)) -> bytes:
    buffer = io.BytesIO()
    image = Image.new("RGB", (width, height), colour)
    image.putpixel((1, 1), (0, 255, 0))  # not a flat picture: a resend would still differ
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def vary(init: bytes, size: Size, strength: float | None = 0.55, prompt: str = "a harbour"):
    return RenderRequest(
        prompt=prompt,
        negative_prompt="blurry",
        size=size,
        seeds=(77,),
        settings={"cfg_scale": 7},
        init_image=init,
        strength=strength,
    )


def provider_for(session, fake, model: str = "core") -> StabilityProvider:
    return StabilityProvider(session, api_key=KEY, host=fake.url, model=model)


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


async def test_sd3_vary_sends_the_image_exactly_with_mode_and_strength(session, fake) -> None:
    init = png(1344, 768)
    provider = provider_for(session, fake, model="sd3.5-large")
    assert provider.accepts_init_image and provider.vary_model == "sd3.5-large"
    [image] = await provider.render(vary(init, Size(1344, 768)))
    [sent] = fake.requests
    assert sent.path == "/v2beta/stable-image/generate/sd3"
    assert sent.files == {"image": init}
    assert sent.fields == {
        "prompt": "a harbour",
        "negative_prompt": "blurry",
        "mode": "image-to-image",
        "model": "sd3.5-large",
        "strength": "0.55",
        "seed": "77",
        "cfg_scale": "7",
        "output_format": "png",
    }
    assert image.seed == 77 and size_of(image.data) == (1344, 768)


async def test_core_varies_with_sd3_5_large_and_says_so(session, fake) -> None:
    provider = provider_for(session, fake)
    assert provider.model == "core" and provider.vary_model == "sd3.5-large"
    await provider.render(vary(png(1024, 1024), Size(1024, 1024), strength=0.3))
    [sent] = fake.requests
    assert sent.path == "/v2beta/stable-image/generate/sd3"
    assert (sent.fields["model"], sent.fields["strength"]) == ("sd3.5-large", "0.3")
    assert "aspect_ratio" not in sent.fields


async def test_ultra_takes_the_image_and_strength_without_a_mode(session, fake) -> None:
    init = png(1024, 1024)
    await provider_for(session, fake, model="ultra").render(vary(init, Size(1024, 1024)))
    [sent] = fake.requests
    assert sent.path == "/v2beta/stable-image/generate/ultra"
    assert sent.files["image"] == init and sent.fields["strength"] == "0.55"
    assert "mode" not in sent.fields


async def test_no_strength_means_the_spec_default(session, fake) -> None:
    await provider_for(session, fake, "sd3.5-medium").render(vary(png(512, 512), SQUARE, None))
    assert fake.requests[0].fields["strength"] == "0.55"


async def test_a_moderated_prompt_on_vary_is_refused(session, fake) -> None:
    with pytest.raises(Refused, match="content moderation"):
        await provider_for(session, fake).render(vary(png(512, 512), SQUARE, prompt="forbidden"))


async def test_a_v1_engine_cannot_vary_and_says_so(session, fake) -> None:
    provider = provider_for(session, fake, model="stable-diffusion-xl-1024-v1-0")
    assert provider.accepts_init_image is False
    with pytest.raises(ProviderError, match="cannot vary with stable-diffusion-xl-1024-v1-0"):
        await provider.render(vary(png(1024, 1024), SQUARE))
    assert fake.requests == []


async def test_the_fake_rejects_an_image_to_image_call_without_an_image(session, fake) -> None:
    body = (
        b'--b\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nx\r\n'
        b'--b\r\nContent-Disposition: form-data; name="mode"\r\n\r\nimage-to-image\r\n--b--\r\n'
    )
    headers = {
        "Authorization": f"Bearer {KEY}",
        "Accept": "application/json",
        "Content-Type": "multipart/form-data; boundary=b",
    }
    url = f"{fake.url}/v2beta/stable-image/generate/sd3"
    async with session.post(url, data=body, headers=headers) as response:
        assert response.status == 400
        answer = await response.json()
    assert answer["name"] == "bad_request"
    assert any(e.startswith("image: required") for e in answer["errors"])
    assert any(e.startswith("strength: required") for e in answer["errors"])


async def test_upscale_sends_the_image_exactly_and_returns_twice_the_size(session, fake) -> None:
    init = png(1344, 768)
    upscaled = await provider_for(session, fake).upscale(init, 2)
    [sent] = fake.requests
    assert sent.path == "/v2beta/stable-image/upscale/fast"
    assert sent.files == {"image": init} and sent.fields == {"output_format": "png"}
    assert (upscaled.width, upscaled.height) == (2688, 1536)
    assert size_of(upscaled.data) == (2688, 1536)
    assert upscaled.upscaler == "stability fast upscale (4x, resized to 2x)"
    assert fake.credits == 998


@pytest.mark.parametrize(
    ("original", "sent_within"),
    [((2048, 2048), True), ((3000, 600), True), ((100, 4000), True)],
)
async def test_upscale_fits_any_image_to_the_size_rules(
    session, fake, original, sent_within
) -> None:
    upscaled = await provider_for(session, fake).upscale(png(*original), 2)
    width, height = size_of(fake.requests[0].files["image"])
    assert 32 <= min(width, height) and max(width, height) <= 1536
    assert 1024 <= width * height <= 1_048_576 and max(width, height) / min(width, height) <= 2.5
    assert size_of(upscaled.data) == (original[0] * 2, original[1] * 2)


async def test_upscale_keeps_the_picture_when_it_pads_a_long_strip(session, fake) -> None:
    strip = Image.new("RGB", (3000, 600), (10, 10, 200))
    strip.paste((250, 250, 0), (0, 0, 1500, 600))  # left half yellow, right half blue
    buffer = io.BytesIO()
    strip.save(buffer, format="PNG")
    upscaled = await provider_for(session, fake).upscale(buffer.getvalue(), 2)
    with Image.open(io.BytesIO(upscaled.data)) as image:
        rgb = image.convert("RGB")
        assert rgb.getpixel((10, 600)) == pytest.approx((250, 250, 0), abs=12)
        assert rgb.getpixel((5990, 600)) == pytest.approx((10, 10, 200), abs=12)
        assert rgb.getpixel((3000, 5)) != rgb.getpixel((2990, 5))  # no padding left at the top


async def test_upscale_with_a_wrong_key_names_the_variable(session, fake) -> None:
    provider = StabilityProvider(session, api_key="sk-wrong-00000000", host=fake.url)
    with pytest.raises(ProviderError, match="STABILITY_API_KEY") as caught:
        await provider.upscale(png(512, 512))
    assert "sk-wrong-00000000" not in str(caught.value)


async def test_the_fake_refuses_an_upscale_input_off_the_rules(session, fake) -> None:
    body = b"".join(
        [
            b'--b\r\nContent-Disposition: form-data; name="image"; filename="x.png"\r\n',
            b"Content-Type: image/png\r\n\r\n",
            png(2000, 100),
            b"\r\n--b--\r\n",
        ]
    )
    headers = {
        "Authorization": f"Bearer {KEY}",
        "Accept": "application/json",
        "Content-Type": "multipart/form-data; boundary=b",
    }
    url = f"{fake.url}/v2beta/stable-image/upscale/fast"
    async with session.post(url, data=body, headers=headers) as response:
        assert response.status == 400
        answer = await response.json()
    assert answer["name"] == "bad_request" and len(answer["errors"]) == 2
