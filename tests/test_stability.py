"""The stability provider against a loopback fake of Stability AI's v2beta and v1 APIs."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import pytest
from PIL import Image

from imagebot.bot.settings import Settings
from imagebot.providers.base import (
    ConfigError,
    NeedsKey,
    ProviderError,
    Refused,
    RenderRequest,
    Size,
    Unavailable,
)
from imagebot.providers.catalog import build_provider
from imagebot.providers.stability import StabilityProvider
from tests.fakes.stability_server import FakeStability

KEY = "sk-test-0123456789abcdef"
PAINTER = {"steps": 32, "cfg_scale": 7, "sampler": "DPM++ 2M Karras"}

SQUARE = Size(1024, 1024)


@pytest.fixture
async def fake() -> AsyncIterator[FakeStability]:
    async with FakeStability(api_key=KEY) as server:
        yield server


def provider_for(session, fake, model: str = "core", key: str = KEY, **kw) -> StabilityProvider:
    return StabilityProvider(session, api_key=key, host=fake.url, model=model, **kw)


def request(*seeds: int, size: Size = SQUARE, prompt: str = "a foggy harbour"):
    return RenderRequest(
        prompt=prompt,
        negative_prompt="blurry, text",
        size=size,
        seeds=seeds,
        settings=dict(PAINTER),
    )


async def test_core_sends_a_multipart_form_and_returns_the_seed(session, fake) -> None:
    provider = provider_for(session, fake)
    size = provider.sizes().fit(Size(1024, 576))
    [image] = await provider.render(request(42, size=size))
    [sent] = fake.requests
    assert sent.path == "/v2beta/stable-image/generate/core"
    assert sent.content_type.startswith("multipart/form-data")
    assert sent.accept == "application/json" and sent.authorized
    assert sent.fields == {
        "prompt": "a foggy harbour",
        "negative_prompt": "blurry, text",
        "aspect_ratio": "16:9",
        "seed": "42",
        "output_format": "png",
    }
    assert image.seed == 42
    assert Image.open(io.BytesIO(image.data)).size == (1344, 768)


@pytest.mark.parametrize(
    ("asked", "ratio", "pixels"),
    [
        (Size(1024, 576), "16:9", Size(1344, 768)),
        (Size(512, 512), "1:1", Size(1024, 1024)),
        (Size(1080, 1350), "4:5", Size(896, 1088)),
        (Size(768, 1024), "2:3", Size(832, 1216)),  # by the real pixels, 3:4 is nearer 2:3
        (Size(2560, 1080), "21:9", Size(1536, 640)),
        (Size(1080, 1920), "9:16", Size(768, 1344)),
        (Size(1500, 1000), "3:2", Size(1216, 832)),
    ],
)
async def test_sizes_map_to_the_nearest_aspect_ratio(session, fake, asked, ratio, pixels) -> None:
    provider = provider_for(session, fake)
    fitted = provider.sizes().fit(asked)
    assert fitted == pixels
    assert provider.form(request(1, size=fitted), 1)["aspect_ratio"] == ratio


async def test_sd3_models_go_to_the_sd3_endpoint_with_model_and_cfg(session, fake) -> None:
    await provider_for(session, fake, model="sd3.5-large").render(request(7))
    [sent] = fake.requests
    assert sent.path == "/v2beta/stable-image/generate/sd3"
    assert sent.fields["model"] == "sd3.5-large"
    assert sent.fields["mode"] == "text-to-image"
    assert sent.fields["cfg_scale"] == "7"


async def test_turbo_gets_no_negative_prompt_or_cfg(session, fake) -> None:
    await provider_for(session, fake, model="sd3.5-large-turbo").render(request(7))
    assert "negative_prompt" not in fake.requests[0].fields
    assert "cfg_scale" not in fake.requests[0].fields


async def test_ultra_has_its_own_endpoint(session, fake) -> None:
    await provider_for(session, fake, model="ultra").render(request(7))
    assert fake.requests[0].path == "/v2beta/stable-image/generate/ultra"


async def test_v1_sdxl_sends_json_with_weighted_prompts(session, fake) -> None:
    provider = provider_for(session, fake, model="stable-diffusion-xl-1024-v1-0")
    size = provider.sizes().fit(Size(1024, 576))
    assert size == Size(1344, 768)
    images = await provider.render(request(11, 12, size=size))
    assert [i.seed for i in images] == [11, 12]
    first = fake.requests[0].fields
    assert fake.requests[0].path == "/v1/generation/stable-diffusion-xl-1024-v1-0/text-to-image"
    assert first["text_prompts"] == [
        {"text": "a foggy harbour", "weight": 1},
        {"text": "blurry, text", "weight": -1},
    ]
    assert (first["width"], first["height"], first["samples"]) == (1344, 768, 1)
    assert (first["steps"], first["cfg_scale"], first["sampler"]) == (32, 7.0, "K_DPMPP_2M")
    assert Image.open(io.BytesIO(images[1].data)).size == (1344, 768)


def test_v1_sdxl_sizes_are_the_nine_allowed() -> None:
    provider = StabilityProvider.__new__(StabilityProvider)
    provider._model = "stable-diffusion-xl-1024-v1-0"
    rule = provider.sizes()
    assert rule.fit(Size(512, 512)) == Size(1024, 1024)
    assert rule.fit(Size(768, 1024)) == Size(896, 1152)
    assert rule.fit(Size(1080, 1920)) == Size(768, 1344)


async def test_v1_rejects_a_size_off_the_list_with_its_message(session, fake) -> None:
    provider = provider_for(session, fake, model="stable-diffusion-xl-1024-v1-0")
    with pytest.raises(ProviderError, match="allowed dimensions are 1024x1024"):
        await provider.render(request(1, size=Size(768, 768)))


async def test_content_filtered_is_refused(session, fake) -> None:
    with pytest.raises(Refused, match="content filter"):
        await provider_for(session, fake).render(request(1, prompt="please blurme"))


async def test_v1_content_filtered_is_refused(session, fake) -> None:
    provider = provider_for(session, fake, model="stable-diffusion-xl-1024-v1-0")
    with pytest.raises(Refused):
        await provider.render(request(1, prompt="please blurme"))


async def test_moderation_403_is_refused_not_a_key_problem(session, fake) -> None:
    with pytest.raises(Refused, match="content moderation"):
        await provider_for(session, fake).render(request(1, prompt="a forbidden thing"))


async def test_a_wrong_key_names_the_variable_and_never_shows_the_key(session, fake) -> None:
    wrong = "sk-wrong-key-987654321"
    with pytest.raises(NeedsKey) as caught:
        await provider_for(session, fake, key=wrong).render(request(1))
    assert "STABILITY_API_KEY" in str(caught.value)
    assert wrong not in str(caught.value) and KEY not in str(caught.value)
    assert not fake.requests[0].authorized


async def test_out_of_credits_says_so(session, fake) -> None:
    fake.credits = 0
    with pytest.raises(Unavailable, match="out of credits.*purchase more credits") as caught:
        await provider_for(session, fake).render(request(1))
    assert len(fake.requests) == 1  # no retry: waiting does not buy credits
    assert caught.value.retry_after is None


async def test_429_with_retry_after_is_retried(session, fake) -> None:
    fake.fail_next(1, "429", retry_after=0)
    [image] = await provider_for(session, fake).render(request(5))
    assert image.seed == 5
    assert len(fake.requests) == 2


async def test_429_without_retry_after_reports_the_wait_in_the_message(session, fake) -> None:
    fake.fail_next(1, "429")
    with pytest.raises(Unavailable, match="rate limit") as caught:
        await provider_for(session, fake, attempts=1).render(request(5))
    assert caught.value.retry_after == 60.0


async def test_500_then_success(session, fake) -> None:
    fake.fail_next(1, "500", retry_after=0)
    [image] = await provider_for(session, fake).render(request(5))
    assert image.seed == 5


async def test_a_hang_times_out_as_unavailable(session) -> None:
    async with FakeStability(api_key=KEY, hang_seconds=5) as fake:
        fake.fail_next(1, "hang")
        provider = provider_for(session, fake, timeout=0.3, attempts=1)
        with pytest.raises(Unavailable, match="did not answer in time"):
            await provider.render(request(1))


async def test_a_bad_aspect_ratio_shows_the_services_message(session, fake) -> None:
    body = (
        b'--b\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nx\r\n'
        b'--b\r\nContent-Disposition: form-data; name="aspect_ratio"\r\n\r\n4:3\r\n--b--\r\n'
    )
    headers = {
        "Authorization": f"Bearer {KEY}",
        "Accept": "application/json",
        "Content-Type": "multipart/form-data; boundary=b",
    }
    url = f"{fake.url}/v2beta/stable-image/generate/core"
    async with session.post(url, data=body, headers=headers) as response:
        assert response.status == 400
        answer = await response.json()
    assert answer["name"] == "bad_request" and "aspect_ratio" in answer["errors"][0]


def test_an_unknown_model_names_the_setting(session) -> None:
    with pytest.raises(ConfigError, match="STABILITY_MODEL"):
        StabilityProvider(session, api_key=KEY, model="dall-e-3")


async def test_from_settings_uses_key_host_and_default_model(session, fake) -> None:
    settings = Settings.from_env(
        {"STABILITY_API_KEY": KEY, "STABILITY_API_HOST": fake.url}, dotenv_path=None
    )
    provider = build_provider("stability", settings.provider_options, session)
    assert isinstance(provider, StabilityProvider)
    assert provider.model == "core"
    await provider.render(request(3))
    assert fake.requests[0].authorized
