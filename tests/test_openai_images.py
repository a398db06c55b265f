"""The dalle provider through the real openai SDK against the loopback fake."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import aiohttp
import pytest
from PIL import Image

from imagebot.bot.settings import Settings
from imagebot.providers.base import NeedsKey, Refused, RenderRequest, Size, Unavailable
from imagebot.providers.catalog import build_provider
from imagebot.providers.openai_images import OpenAIImagesProvider
from tests.fakes.openai_server import FakeOpenAI

KEY = "sk-img-test-5e6f7a8b9c0d"


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(api_key=KEY) as server:
        yield server


def make(fake: FakeOpenAI, session: aiohttp.ClientSession, model: str, **kwargs):
    options = {"api_key": KEY, "max_retries": 2, "timeout": 5.0, **kwargs}
    return OpenAIImagesProvider(session=session, model=model, base_url=fake.base_url, **options)


def ask(provider: OpenAIImagesProvider, requested: str, count: int = 1, prompt: str = "a cat"):
    size = provider.sizes().fit(Size.parse(requested))
    return RenderRequest(prompt=prompt, negative_prompt="", size=size, seeds=tuple(range(count)))


def size_of(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data)).size


@pytest.mark.parametrize(
    ("model", "requested", "fitted", "per_call"),
    [
        ("dall-e-3", "512x512", "1024x1024", 1),
        ("dall-e-3", "1024x576", "1792x1024", 1),
        ("dall-e-3", "576x1024", "1024x1792", 1),
        ("dall-e-2", "300x300", "512x512", 10),
        ("dall-e-2", "1024x576", "1024x1024", 10),
        ("gpt-image-1", "1024x576", "1536x1024", 10),
        ("gpt-image-1-mini", "512x768", "1024x1536", 10),
    ],
)
async def test_sizes_and_images_per_call_follow_the_model(
    fake: FakeOpenAI,
    session: aiohttp.ClientSession,
    model: str,
    requested: str,
    fitted: str,
    per_call: int,
) -> None:
    provider = make(fake, session, model)
    assert str(provider.sizes().fit(Size.parse(requested))) == fitted
    assert provider.max_images_per_call == per_call
    [image] = await provider.render(ask(provider, requested))
    assert size_of(image.data) == tuple(map(int, fitted.split("x")))
    assert fake.image_requests[0].json["size"] == fitted
    await provider.aclose()


async def test_dall_e_2_renders_several_in_one_call_as_base64(
    fake: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    provider = make(fake, session, "dall-e-2")
    images = await provider.render(ask(provider, "256x256", count=4))
    assert len(images) == 4 and {size_of(i.data) for i in images} == {(256, 256)}
    assert len({i.data for i in images}) == 4
    assert all(i.format == "png" and i.seed is None for i in images)
    [request] = fake.image_requests
    assert (request.json["n"], request.json["response_format"]) == (4, "b64_json")
    await provider.aclose()


async def test_dall_e_3_keeps_n_at_one_and_captures_revised_prompt(
    fake: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    provider = make(fake, session, "dall-e-3")
    images = await provider.render(ask(provider, "1024x1024", count=2, prompt="a red fox"))
    assert [r.json["n"] for r in fake.image_requests] == [1, 1]
    assert all(i.revised_prompt == "A detailed rendering of: a red fox" for i in images)
    await provider.aclose()


async def test_gpt_image_never_sends_response_format(
    fake: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    provider = make(fake, session, "gpt-image-1")
    images = await provider.render(ask(provider, "1024x1024", count=3))
    assert len(images) == 3 and images[0].revised_prompt is None
    assert "response_format" not in fake.image_requests[0].json
    await provider.aclose()


async def test_url_answers_are_downloaded(fake: FakeOpenAI, session: aiohttp.ClientSession) -> None:
    fake.force_image_urls = True
    provider = make(fake, session, "dall-e-2")
    images = await provider.render(ask(provider, "512x512", count=2))
    assert sorted(i.data for i in images) == sorted(fake.files.values())
    assert size_of(images[0].data) == (512, 512)
    await provider.aclose()


async def test_unknown_model_passes_the_size_through(
    fake: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    fake.accept_any_image_model = True
    provider = make(fake, session, "stablediffusion")
    assert str(provider.sizes().fit(Size(1024, 1024))) == "1024x1024"
    request = RenderRequest(prompt="a cat", negative_prompt="", size=Size(768, 512), seeds=(1,))
    [image] = await provider.render(request)
    assert fake.image_requests[0].json["size"] == "768x512" and size_of(image.data) == (768, 512)
    await provider.aclose()


async def test_long_prompt_is_cut_to_the_model_limit(
    fake: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    provider = make(fake, session, "dall-e-2")
    await provider.render(ask(provider, "256x256", prompt="a cat " * 400))
    assert len(fake.image_requests[0].json["prompt"]) == 1000
    await provider.aclose()


async def test_refused_prompt_is_refused(fake: FakeOpenAI, session: aiohttp.ClientSession) -> None:
    provider = make(fake, session, "dall-e-3")
    with pytest.raises(Refused, match="safety system"):
        await provider.render(ask(provider, "1024x1024", prompt="a forbidden thing"))
    assert len(fake.image_requests) == 1
    await provider.aclose()


async def test_rate_limit_then_success(fake: FakeOpenAI, session: aiohttp.ClientSession) -> None:
    fake.fail_next("429", retry_after=0.01)
    provider = make(fake, session, "gpt-image-1")
    assert len(await provider.render(ask(provider, "1024x1024"))) == 1
    assert len(fake.image_requests) == 2
    await provider.aclose()


async def test_server_errors_that_persist_are_unavailable(
    fake: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    fake.fail_next("500", times=3, retry_after=0.01)
    provider = make(fake, session, "gpt-image-1")
    with pytest.raises(Unavailable, match="HTTP 500"):
        await provider.render(ask(provider, "1024x1024"))
    await provider.aclose()


async def test_time_out_is_unavailable(fake: FakeOpenAI, session: aiohttp.ClientSession) -> None:
    fake.fail_next("hang")
    provider = make(fake, session, "dall-e-2", timeout=0.3, max_retries=0)
    with pytest.raises(Unavailable, match="did not answer in time"):
        await provider.render(ask(provider, "256x256"))
    await provider.aclose()


async def test_wrong_key_never_appears_in_the_error(
    fake: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    wrong = "sk-proj-wrongwrongwrong42"
    provider = make(fake, session, "dall-e-3", api_key=wrong)
    with pytest.raises(NeedsKey) as caught:
        await provider.render(ask(provider, "1024x1024"))
    assert "OPENAI_API_KEY" in str(caught.value) and wrong not in str(caught.value)
    assert caught.value.__context__ is None
    await provider.aclose()


async def test_built_from_settings_through_the_registry(
    fake: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    settings = Settings.from_env(
        {
            "OPENAI_API_KEY": KEY,
            "OPENAI_BASE_URL": fake.base_url,
            "IMAGEBOT_IMAGE_MODEL": "dall-e-3",
            "IMAGEBOT_PROVIDER_CONCURRENCY": "3",
        }
    )
    provider = build_provider("dalle", settings.provider_options, session)
    assert (provider.model, provider.max_concurrency, provider.max_images_per_call) == (
        "dall-e-3",
        3,
        1,
    )
    assert len(await provider.render(ask(provider, "1024x576"))) == 1
    assert fake.image_requests[0].json["model"] == "dall-e-3"
    await provider.aclose()
