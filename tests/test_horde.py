"""HordeProvider against a loopback fake AI Horde: flow, progress, poll rate, cancel, limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from imagebot.bot.settings import Settings
from imagebot.providers.base import (
    NeedsKey,
    ProviderError,
    Refused,
    RenderRequest,
    Size,
    Unavailable,
)
from imagebot.providers.horde import CLIENT_AGENT, HordeProvider, anonymous_limits
from tests.fakes.horde_server import ANONYMOUS_KEY, FakeHorde

FAST = {"poll_interval": 0.01, "max_poll_interval": 0.02}


@pytest.fixture
async def fake() -> AsyncIterator[FakeHorde]:
    async with FakeHorde() as server:
        yield server


SQUARE = Size(512, 512)


def request(seeds=(100,), size=SQUARE, **settings: object) -> RenderRequest:
    return RenderRequest(
        prompt="a lighthouse in a storm",
        negative_prompt="text, watermark",
        size=size,
        seeds=tuple(seeds),
        settings={"steps": 25, "cfg_scale": 7.5, "sampler": "DPM++ 2M Karras", **settings},
    )


def webp_size(data: bytes) -> tuple[int, int]:
    from io import BytesIO

    from PIL import Image

    with Image.open(BytesIO(data)) as image:
        assert image.format == "WEBP"
        return image.size


async def test_submit_poll_and_collect_returns_images_in_seed_order(session, fake):
    provider = HordeProvider(session, "registered-key", fake.url, **FAST)
    images = await provider.render(request(seeds=(100, 101, 102), size=Size(768, 512)))

    assert [image.seed for image in images] == [100, 101, 102]
    assert all(image.format == "webp" and webp_size(image.data) == (768, 512) for image in images)
    submit = fake.logged("/api/v2/generate/async")[0]
    assert submit.headers == {"apikey": "registered-key", "Client-Agent": CLIENT_AGENT}
    payload = submit.json
    assert payload["prompt"] == "a lighthouse in a storm ### text, watermark"
    assert payload["params"] == {
        "sampler_name": "k_dpmpp_2m", "karras": True, "cfg_scale": 7.5, "steps": 25,
        "width": 768, "height": 512, "n": 3, "seed": "100", "seed_variation": 1,
    }  # fmt: skip
    assert (payload["nsfw"], payload["censor_nsfw"], payload["r2"]) == (False, True, True)
    downloads = fake.logged("/r2/")
    assert len(downloads) == 3 and all("apikey" not in d.headers for d in downloads)
    assert len(fake.logged("/api/v2/generate/status/", "GET")) == 1


async def test_base64_images_are_decoded(session, fake):
    fake.r2 = False
    provider = HordeProvider(session, "registered-key", fake.url, **FAST)
    images = await provider.render(request(seeds=(5,)))
    assert webp_size(images[0].data) == (512, 512) and images[0].seed == 5
    assert not fake.logged("/r2/")


async def test_progress_callback_hears_the_queue_position(session, fake):
    fake.queue_position = 3
    heard: list[str] = []
    provider = HordeProvider(session, "registered-key", fake.url, **FAST)
    await provider.render(request(), progress=heard.append)
    assert "Horde: queue position 2, about 24 s left" in heard
    assert "Horde: queue position 0, about 8 s left" in heard
    assert any(line.startswith("Horde: rendering (0/1 done") for line in heard)


async def test_checks_are_spaced_at_least_the_poll_interval(session, fake):
    fake.queue_position = 5
    provider = HordeProvider(
        session, "registered-key", fake.url, poll_interval=0.05, max_poll_interval=0.1
    )
    await provider.render(request())
    checks = [r.at for r in fake.logged("/api/v2/generate/check/")]
    assert len(checks) == 7  # five queue steps, one rendering, one done
    gaps = [later - earlier for earlier, later in zip(checks, checks[1:], strict=False)]
    assert min(gaps) >= 0.045  # asyncio.sleep never wakes early beyond clock granularity


async def test_cancelling_the_task_deletes_the_horde_request(session, fake):
    fake.queue_position = 10_000
    provider = HordeProvider(session, "registered-key", fake.url, **FAST)
    task = asyncio.create_task(provider.render(request()))
    while not fake.logged("/api/v2/generate/check/"):
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (job,) = fake.jobs.values()
    deletes = fake.logged("/api/v2/generate/status/", "DELETE")
    assert [d.path for d in deletes] == [f"/api/v2/generate/status/{job.id}"]
    assert job.cancelled


async def test_a_time_out_cancels_and_reports_unavailable(session, fake):
    fake.queue_position = 10_000
    provider = HordeProvider(session, "registered-key", fake.url, timeout=0.1, **FAST)
    with pytest.raises(Unavailable, match="did not finish"):
        await provider.render(request())
    assert next(iter(fake.jobs.values())).cancelled


async def test_anonymous_requests_are_clamped_to_what_needs_no_kudos(session, fake):
    heard: list[str] = []
    provider = HordeProvider(session, ANONYMOUS_KEY, fake.url, **FAST)
    images = await provider.render(
        request(size=Size(1024, 576), steps=50, sampler="DPM++ SDE"), progress=heard.append
    )
    params = fake.logged("/api/v2/generate/async")[0].json["params"]
    assert params["width"] * params["height"] <= 576 * 576
    assert params["width"] % 64 == 0 and params["height"] % 64 == 0
    assert params["width"] > params["height"]  # the aspect survives
    assert (params["sampler_name"], params["steps"]) == ("k_dpmpp_sde", 20)  # second-order
    assert webp_size(images[0].data) == (params["width"], params["height"])
    assert any("HORDE_API_KEY" in line and "anonymous" in line for line in heard)


def test_anonymous_limits_follow_the_horde_downgrade_rule():
    assert anonymous_limits(Size(512, 512), 30, "k_euler_a") == (Size(512, 512), 30)
    assert anonymous_limits(Size(1024, 1024), 60, "k_euler_a") == (Size(576, 576), 40)
    assert anonymous_limits(Size(512, 512), 30, "lcm") == (Size(512, 512), 10)


async def test_kudos_upfront_for_the_anonymous_key_says_to_set_a_key(session, fake):
    fake.max_res = 512  # heavy demand: the Horde lowered its free size
    provider = HordeProvider(session, ANONYMOUS_KEY, fake.url, **FAST)
    with pytest.raises(NeedsKey) as caught:
        await provider.render(request(size=Size(576, 576)))
    message = str(caught.value)
    assert "kudos" in message and "HORDE_API_KEY" in message
    assert "This request requires" in message  # the Horde's own figure is kept


async def test_kudos_upfront_for_a_poor_account_is_explained(session, fake):
    fake.keys["poor-key"] = 0.0
    provider = HordeProvider(session, "poor-key", fake.url, **FAST)
    with pytest.raises(ProviderError, match="too few kudos") as caught:
        await provider.render(request(size=Size(1024, 1024)))
    assert not isinstance(caught.value, NeedsKey | Unavailable)


async def test_an_unknown_key_needs_a_key_naming_the_variable(session, fake):
    provider = HordeProvider(session, "not-a-real-key", fake.url, **FAST)
    with pytest.raises(NeedsKey, match="HORDE_API_KEY"):
        await provider.render(request())


async def test_all_censored_is_refused_and_some_censored_keeps_the_rest(session, fake):
    provider = HordeProvider(session, "registered-key", fake.url, **FAST)
    fake.censor = "all"
    with pytest.raises(Refused, match="censored"):
        await provider.render(request(seeds=(1, 2)))
    fake.censor = "first"
    images = await provider.render(request(seeds=(1, 2, 3)))
    assert [image.seed for image in images] == [2, 3]


async def test_a_faulted_request_is_an_error_and_is_deleted(session, fake):
    fake.fault, fake.queue_position = True, 0
    provider = HordeProvider(session, "registered-key", fake.url, **FAST)
    with pytest.raises(ProviderError, match="faulted"):
        await provider.render(request())
    assert fake.logged("/api/v2/generate/status/", "DELETE")


async def test_an_impossible_request_is_unavailable(session, fake):
    fake.impossible = True
    provider = HordeProvider(session, "registered-key", fake.url, **FAST)
    with pytest.raises(Unavailable, match="no Horde worker"):
        await provider.render(request())


async def test_too_many_prompts_is_retried_after_retry_after(session, fake):
    fake.fail_next(429, "TooManyPrompts", "Parallel requests (3) exceeded user limit (2).", "0")
    provider = HordeProvider(session, "registered-key", fake.url, **FAST)
    images = await provider.render(request())
    assert len(images) == 1 and len(fake.logged("/api/v2/generate/async")) == 2


async def test_a_corrupt_prompt_is_refused(session, fake):
    provider = HordeProvider(session, "registered-key", fake.url, **FAST)
    bad = RenderRequest("a forbidden-word scene", "", Size(512, 512), (1,))
    with pytest.raises(Refused, match="CorruptPrompt"):
        await provider.render(bad)


async def test_from_settings_uses_the_key_and_url(session, fake):
    settings = Settings.from_env({"HORDE_API_KEY": "registered-key", "HORDE_URL": fake.url}, None)
    fake.queue_position, fake.seconds_per_position = 0, 0
    provider = HordeProvider.from_options(settings.provider_options, session)
    await provider.render(request())
    assert fake.logged("/api/v2/generate/async")[0].headers["apikey"] == "registered-key"
    anonymous = HordeProvider.from_options(Settings.from_env({}, None).provider_options, session)
    assert anonymous.anonymous and anonymous.sizes().fit(Size(1024, 1024)).area <= 576 * 576
