"""dalle Vary through the real openai SDK: variations for dall-e-2, edits for GPT Image."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import aiohttp
import pytest
from PIL import Image

from imagebot.providers.base import ProviderError, Refused, RenderRequest, Size
from imagebot.providers.openai_images import OpenAIImagesProvider
from tests.fakes.openai_server import FakeOpenAI

KEY = "sk-test-vary-0123456789"


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(api_key=KEY) as server:
        yield server


def make(fake, session, model: str) -> OpenAIImagesProvider:
    return OpenAIImagesProvider(
        session=session, model=model, api_key=KEY, base_url=fake.base_url, max_retries=0
    )


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    image = Image.new("RGB", (width, height), (30, 60, 200))
    image.putpixel((2, 2), (255, 255, 0))
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def vary(init: bytes, size: Size, prompt: str = "a cat on a roof") -> RenderRequest:
    return RenderRequest(prompt, "", size, (9,), init_image=init, strength=0.55)


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


async def test_dall_e_2_varies_with_the_variations_endpoint(fake, session) -> None:
    init = png(512, 512)
    provider = make(fake, session, "dall-e-2")
    assert provider.accepts_init_image
    [image] = await provider.render(vary(init, Size(512, 512)))
    [sent] = fake.requests_to("/images/variations")
    assert sent.files == {"image": init}
    assert sent.json == {"model": "dall-e-2", "n": "1", "size": "512x512",
                         "response_format": "b64_json"}  # fmt: skip
    assert "prompt" not in sent.json  # the endpoint takes none
    assert size_of(image.data) == (512, 512)


async def test_a_non_square_picture_is_made_the_square_dall_e_2_takes(fake, session) -> None:
    provider = make(fake, session, "dall-e-2")
    await provider.render(vary(png(1024, 576), Size(1024, 1024)))
    [sent] = fake.requests_to("/images/variations")
    assert size_of(sent.files["image"]) == (1024, 1024)


async def test_gpt_image_varies_with_the_edits_endpoint_and_the_prompt(fake, session) -> None:
    init = png(1536, 1024)
    provider = make(fake, session, "gpt-image-1")
    assert provider.accepts_init_image
    [image] = await provider.render(vary(init, Size(1536, 1024)))
    [sent] = fake.requests_to("/images/edits")
    assert sent.files == {"image": init}
    assert sent.json["prompt"] == "a cat on a roof"
    assert (sent.json["model"], sent.json["size"]) == ("gpt-image-1", "1536x1024")
    assert "response_format" not in sent.json
    assert size_of(image.data) == (1536, 1024)


async def test_an_edit_refused_for_safety_is_refused(fake, session) -> None:
    provider = make(fake, session, "gpt-image-1")
    with pytest.raises(Refused, match="safety system"):
        await provider.render(vary(png(1024, 1024), Size(1024, 1024), prompt="forbidden"))


@pytest.mark.parametrize("model", ["dall-e-3", "stable-diffusion-local"])
async def test_other_models_cannot_vary_and_say_so(fake, session, model) -> None:
    provider = make(fake, session, model)
    assert provider.accepts_init_image is False
    with pytest.raises(ProviderError, match=f"cannot vary with {model}: only dall-e-2"):
        await provider.render(vary(png(1024, 1024), Size(1024, 1024)))
    assert fake.requests == []


async def test_the_fake_refuses_a_non_square_variation(fake, session) -> None:
    form = aiohttp.FormData()
    form.add_field("image", png(300, 200), filename="x.png", content_type="image/png")
    headers = {"Authorization": f"Bearer {KEY}"}
    async with session.post(
        f"{fake.base_url}/images/variations", data=form, headers=headers
    ) as response:
        assert response.status == 400
        error = (await response.json())["error"]
    assert "square" in error["message"] and error["param"] == "image"


def test_dalle_has_no_upscaler_of_its_own() -> None:
    assert not hasattr(OpenAIImagesProvider, "upscale")
