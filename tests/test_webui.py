"""The stable-diffusion provider against loopback fakes of the A1111 WebUI API."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from PIL import Image

from imagebot.bot.settings import Settings
from imagebot.providers.base import NeedsKey, ProviderError, RenderRequest, Size, Unavailable
from imagebot.providers.catalog import build_provider
from imagebot.providers.server_pool import ServerPool
from imagebot.providers.webui import WebUIProvider, server_root, shown
from tests.fakes.webui_server import FakeWebUI, free_port


class Clock:
    """A clock the test moves by hand, so a cool-off needs no sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


PAINTER = {"steps": 32, "cfg_scale": 7, "sampler": "DPM++ 2M Karras"}

SMALL = Size(512, 512)


@pytest.fixture
async def fake() -> AsyncIterator[FakeWebUI]:
    async with FakeWebUI() as server:
        yield server


def quick(session: aiohttp.ClientSession, *urls: str, **kwargs) -> WebUIProvider:
    """A provider with short waits, so failure tests stay fast."""
    kwargs.setdefault("base_delay", 0.01)
    kwargs.setdefault("timeout", 5.0)
    return WebUIProvider(session, list(urls), **kwargs)


def request(*seeds: int, size: Size = SMALL, **settings) -> RenderRequest:
    return RenderRequest(
        prompt="a lighthouse in fog, oil painting",
        negative_prompt="blurry, text",
        size=size,
        seeds=seeds,
        settings=settings or dict(PAINTER),
    )


async def test_role_settings_and_seed_reach_the_server(session, fake) -> None:
    provider = quick(session, fake.url)
    [image] = await provider.render(request(1234, size=Size(1024, 576)))
    [sent] = fake.txt2img_payloads
    assert sent["prompt"] == "a lighthouse in fog, oil painting"
    assert sent["negative_prompt"] == "blurry, text"
    assert (sent["steps"], sent["cfg_scale"], sent["sampler_name"]) == (32, 7.0, "DPM++ 2M Karras")
    assert (sent["seed"], sent["width"], sent["height"]) == (1234, 1024, 576)
    assert sent["batch_size"] == 1 and sent["n_iter"] == 1
    assert image.seed == 1234 and image.format == "png"
    assert Image.open(io.BytesIO(image.data)).size == (1024, 576)


async def test_each_seed_is_its_own_request_and_random_seeds_are_reported(session, fake) -> None:
    provider = quick(session, fake.url)
    images = await provider.render(request(7, -1, 9))
    assert [p["seed"] for p in fake.txt2img_payloads] == [7, -1, 9]
    assert images[0].seed == 7 and images[2].seed == 9
    assert images[1].seed is not None and images[1].seed >= 0  # what the server drew


async def test_model_is_the_servers_checkpoint_once_known(session, fake) -> None:
    provider = quick(session, fake.url)
    assert provider.model == "stable-diffusion"
    await provider.render(request(1))
    await provider.render(request(2))
    assert provider.model == "v1-5-pruned-emaonly.safetensors [6ce0161689]"
    assert [r.path for r in fake.requests].count("/sdapi/v1/options") == 1


def test_size_rule_keeps_the_aspect_on_a_grid_of_8() -> None:
    rule = WebUIProvider.__new__(WebUIProvider).sizes()
    assert rule.fit(Size(1024, 576)) == Size(1024, 576)
    assert rule.fit(Size(1000, 563)) == Size(1000, 568)
    assert rule.fit(Size(4096, 4096)) == Size(2048, 2048)
    fitted = rule.fit(Size(4096, 1024))
    assert fitted.width == 2048 and fitted.height % 8 == 0 and 512 <= fitted.height <= 520


async def test_a_500_is_retried_then_succeeds(session, fake) -> None:
    fake.fail_next(1, "500")
    [image] = await quick(session, fake.url).render(request(5))
    assert image.seed == 5
    assert len(fake.txt2img_payloads) == 2


async def test_repeated_500s_report_the_servers_error(session, fake) -> None:
    fake.fail_next(3, "500")
    with pytest.raises(Unavailable, match="HTTP 500.*same device"):
        await quick(session, fake.url, attempts=3).render(request(5))


async def test_a_hung_server_is_unavailable_after_the_timeout(session) -> None:
    async with FakeWebUI(hang_seconds=5) as fake:
        fake.fail_next(1, "hang")
        provider = quick(session, fake.url, timeout=0.3, attempts=1)
        with pytest.raises(Unavailable, match="did not finish within its 0.3 s budget"):
            await provider.render(request(5))  # one budget, not attempts x timeout


async def test_malformed_json_is_a_bad_response(session, fake) -> None:
    fake.fail_next(1, "malformed")
    with pytest.raises(ProviderError, match="cannot read") as caught:
        await quick(session, fake.url).render(request(5))
    assert caught.value.kind == "bad-response"


async def test_a_webui_without_api_says_to_add_the_flag(session) -> None:
    async with FakeWebUI(api=False) as fake:
        with pytest.raises(ProviderError) as caught:
            await quick(session, fake.url).render(request(1))
    message = str(caught.value)
    assert "--api" in message and "STABLE_DIFFUSION_URL" in message
    assert not isinstance(caught.value, Unavailable)


async def test_a_pasted_api_path_still_reaches_the_server(session, fake) -> None:
    provider = quick(session, fake.url + "/sdapi/v1/")
    [image] = await provider.render(request(3))
    assert image.seed == 3
    assert server_root("http://gpu:7860/") == "http://gpu:7860"
    assert server_root("http://gpu:7860/sdapi/v1/txt2img") == "http://gpu:7860"
    assert server_root("http://proxy/sd") == "http://proxy/sd"


async def test_a_wrong_path_is_named_in_the_message(session, fake) -> None:
    with pytest.raises(ProviderError, match="the path '/webui'"):
        await quick(session, fake.url + "/webui").render(request(1))


async def test_an_unknown_sampler_lists_the_servers_samplers(session, fake) -> None:
    with pytest.raises(ProviderError, match="no sampler 'Euler Fancy'.*DPM\\+\\+ 2M"):
        await quick(session, fake.url).render(request(1, sampler="Euler Fancy"))


async def test_a_bad_setting_type_gets_the_servers_validation_message(session, fake) -> None:
    provider = quick(session, fake.url)
    payload = provider.payload(request(1), 1) | {"steps": "many"}
    async with session.post(f"{fake.url}/sdapi/v1/txt2img", json=payload) as response:
        assert response.status == 422
        detail = (await response.json())["detail"]
    assert detail[0]["loc"] == ["body", "steps"] and detail[0]["type"] == "int_parsing"


async def test_api_auth_asks_for_credentials_without_showing_them(session) -> None:
    url = f"http://user:hunter2@127.0.0.1:{free_port()}"
    assert "hunter2" not in shown(url)

    async def needs_auth(request: web.Request) -> web.Response:
        return web.json_response({"detail": "Not authenticated"}, status=401)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", needs_auth)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(NeedsKey) as caught:
            await quick(session, f"http://user:hunter2@127.0.0.1:{port}").render(request(1))
    finally:
        await runner.cleanup()
    assert "--api-auth" in str(caught.value) and "hunter2" not in str(caught.value)


async def test_a_refused_connection_is_unavailable(session) -> None:
    provider = quick(session, f"http://127.0.0.1:{free_port()}", attempts=2)
    with pytest.raises(Unavailable, match="cannot connect"):
        await provider.render(request(1))


async def test_from_settings_builds_a_pool_of_every_url(session) -> None:
    settings = Settings.from_env(
        {"STABLE_DIFFUSION_URL": "http://127.0.0.1:7860, http://127.0.0.1:7861/"},
        dotenv_path=None,
    )
    provider = build_provider("stable-diffusion", settings.provider_options, session)
    assert isinstance(provider, WebUIProvider)
    assert provider.pool.urls == ["http://127.0.0.1:7860", "http://127.0.0.1:7861"]
    assert provider.max_concurrency == 2
    assert provider.provider_id == "stable-diffusion"


async def test_a_pool_renders_in_parallel_one_request_per_gpu(session) -> None:
    async with FakeWebUI(latency=0.05) as one, FakeWebUI(latency=0.05) as two:
        provider = quick(session, one.url, two.url)
        calls = [provider.render(request(seed)) for seed in range(8)]
        images = [image for batch in await asyncio.gather(*calls) for image in batch]
    assert sorted(image.seed for image in images) == list(range(8))
    assert one.images_rendered == 4 and two.images_rendered == 4


async def test_a_batch_survives_a_server_dying_mid_way(session) -> None:
    async with FakeWebUI(latency=0.1) as one, FakeWebUI(latency=0.1) as two:
        clock = Clock()
        pool = ServerPool([one.url, two.url], cooloff=30, clock=clock)
        provider = quick(session, one.url, two.url, pool=pool)
        batch = asyncio.gather(*(provider.render(request(seed)) for seed in range(6)))
        for _ in range(500):  # bounded: a broken fake fails the test instead of hanging it
            if one.active:
                break
            await asyncio.sleep(0.01)
        await one.kill()
        images = [image for part in await batch for image in part]
        assert sorted(image.seed for image in images) == list(range(6))
        assert one.images_rendered < 3 <= two.images_rendered
        assert provider.pool.healthy() == [two.url]

        # it comes back: once its cool-off is over the pool sends it work again
        await one.restart()
        before = one.images_rendered
        clock.now += 31
        await asyncio.gather(*(provider.render(request(seed)) for seed in range(10, 14)))
        assert one.images_rendered - before == 2
        assert provider.pool.healthy() == [one.url, two.url]
