"""`imagebot providers` / `/providers`: each provider probed against its loopback fake."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

from bench.common import FakeOnThread
from imagebot.bot.cli import main
from imagebot.bot.settings import Settings
from imagebot.commands.providers_report import format_health
from imagebot.providers.catalog import ProviderOptions
from imagebot.providers.health import check_all, check_provider_health
from tests.fakes.comfyui_server import FakeComfyUI
from tests.fakes.horde_server import FakeHorde
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.webui_server import CHECKPOINT, FakeWebUI, free_port

STABILITY_KEY = "sk-stability-good-0001"


def settings(**env: str) -> ProviderOptions:
    return Settings.from_env(environ=env, dotenv_path=None).provider_options


# --------------------------------------------------------------------------- WebUI


async def test_webui_answers_with_its_checkpoint_and_sizes(session: aiohttp.ClientSession) -> None:
    async with FakeWebUI() as fake:
        health = await check_provider_health(
            "stable-diffusion", settings(STABLE_DIFFUSION_URL=fake.url), session
        )
    assert health.ok and health.all_ok
    assert health.model == CHECKPOINT
    assert CHECKPOINT in health.models
    assert "multiples of 8" in health.sizes
    assert health.latency_ms is not None
    text = format_health([health])
    assert "[ok] stable-diffusion" in text and CHECKPOINT in text


@pytest.mark.parametrize("suffix", ["/", "/sdapi/v1/", "/sdapi/v1/txt2img"])
async def test_webui_url_with_trailing_slash_or_api_tail_still_works(
    session: aiohttp.ClientSession, suffix: str
) -> None:
    async with FakeWebUI() as fake:
        health = await check_provider_health(
            "stable-diffusion", settings(STABLE_DIFFUSION_URL=fake.url + suffix), session
        )
    assert health.ok, health.detail


async def test_webui_without_api_says_start_it_with_api(session: aiohttp.ClientSession) -> None:
    async with FakeWebUI(api=False) as fake:
        health = await check_provider_health(
            "stable-diffusion", settings(STABLE_DIFFUSION_URL=fake.url), session
        )
    assert not health.ok
    assert "the WebUI answers but its API is off: start it with --api" in health.detail
    assert "[DOWN] stable-diffusion" in format_health([health])


async def test_webui_url_with_a_path_says_remove_the_path(session: aiohttp.ClientSession) -> None:
    async with FakeWebUI() as fake:
        health = await check_provider_health(
            "stable-diffusion", settings(STABLE_DIFFUSION_URL=fake.url + "/ui/page"), session
        )
    assert not health.ok
    assert "this URL is not the WebUI API root" in health.detail
    assert "remove the path '/ui/page'" in health.detail


async def test_html_answer_means_not_the_api_root(session: aiohttp.ClientSession) -> None:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<!DOCTYPE html><title>proxy</title>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    async with serve(app) as url:
        health = await check_provider_health(
            "stable-diffusion", settings(STABLE_DIFFUSION_URL=url + "/webui"), session
        )
    assert not health.ok
    assert "not the WebUI API root (remove the path '/webui'" in health.detail


async def test_refused_connection_says_cannot_connect(session: aiohttp.ClientSession) -> None:
    port = free_port()
    health = await check_provider_health(
        "stable-diffusion", settings(STABLE_DIFFUSION_URL=f"http://127.0.0.1:{port}"), session
    )
    assert not health.ok
    assert f"cannot connect to 127.0.0.1:{port}" in health.detail


async def test_pool_with_one_dead_server_names_it(session: aiohttp.ClientSession) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    async with FakeWebUI() as fake:
        health = await check_provider_health(
            "stable-diffusion", settings(STABLE_DIFFUSION_URL=f"{fake.url},{dead}"), session
        )
    assert health.ok  # the provider still renders on the live server
    assert not health.all_ok
    assert [(s.url, s.ok) for s in health.servers] == [(fake.url, True), (dead, False)]
    assert "1 of 2 servers answer" in health.detail and dead in health.detail
    text = format_health([health])
    assert "[PARTLY] stable-diffusion" in text
    assert f"[DOWN] {dead}: cannot connect" in text
    assert f"[ok] {fake.url}" in text


async def test_credentials_in_a_webui_url_are_never_shown(session: aiohttp.ClientSession) -> None:
    port = free_port()
    url = f"http://admin:hunter22@127.0.0.1:{port}"
    dead = f"http://127.0.0.1:{free_port()}"
    health = await check_provider_health(
        "stable-diffusion", settings(STABLE_DIFFUSION_URL=f"{url},{dead}"), session
    )
    assert "hunter22" not in format_health([health])


# --------------------------------------------------------------------------- ComfyUI


async def test_comfyui_lists_its_checkpoints(session: aiohttp.ClientSession) -> None:
    async with FakeComfyUI(newer_object_info=True) as fake:
        health = await check_provider_health("comfyui", settings(COMFYUI_URL=fake.url), session)
    assert health.ok, health.detail
    assert health.model == "v1-5-pruned-emaonly.safetensors"
    assert health.models == ["v1-5-pruned-emaonly.safetensors", "sd_xl_base_1.0.safetensors"]
    assert "multiples of 8" in health.sizes


async def test_comfyui_unknown_checkpoint_lists_what_it_has(
    session: aiohttp.ClientSession,
) -> None:
    async with FakeComfyUI() as fake:
        env = settings(COMFYUI_URL=fake.url, COMFYUI_CHECKPOINT="dreamshaper_8.safetensors")
        health = await check_provider_health("comfyui", env, session)
    assert not health.ok
    assert "COMFYUI_CHECKPOINT 'dreamshaper_8.safetensors' is not on this server" in health.detail
    assert "sd_xl_base_1.0.safetensors" in health.detail


async def test_comfyui_url_with_a_path(session: aiohttp.ClientSession) -> None:
    async with FakeComfyUI() as fake:
        health = await check_provider_health(
            "comfyui", settings(COMFYUI_URL=fake.url + "/comfy"), session
        )
    assert not health.ok
    assert "not a ComfyUI server root (remove the path '/comfy'" in health.detail


# --------------------------------------------------------------------------- Horde


async def test_horde_anonymous_is_noted(session: aiohttp.ClientSession) -> None:
    async with FakeHorde() as fake:
        health = await check_provider_health("horde", settings(HORDE_URL=fake.url), session)
        asked = fake.logged("/api/v2/find_user")
    assert health.ok
    assert "anonymous key" in health.detail
    assert health.models[0].startswith("stable_diffusion")
    assert asked[0].headers["apikey"] == "0000000000"


async def test_horde_registered_key_shows_kudos(session: aiohttp.ClientSession) -> None:
    async with FakeHorde() as fake:
        env = settings(HORDE_URL=fake.url, HORDE_API_KEY="registered-key")
        health = await check_provider_health("horde", env, session)
    assert health.ok
    assert "imagebot#4242" in health.detail and "5,000 kudos" in health.detail


async def test_horde_unknown_key_names_the_variable_not_the_key(
    session: aiohttp.ClientSession,
) -> None:
    async with FakeHorde() as fake:
        env = settings(HORDE_URL=fake.url, HORDE_API_KEY="secret-horde-key-9")
        health = await check_provider_health("horde", env, session)
    assert not health.ok
    assert "HORDE_API_KEY is refused" in health.detail
    assert "secret-horde-key-9" not in format_health([health])


# --------------------------------------------------------------------------- Stability


def stability_app() -> web.Application:
    """Stability's GET /v1/user/balance: credits for a good key, its 401 shape otherwise."""

    async def balance(request: web.Request) -> web.Response:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if given != STABILITY_KEY:
            body = {"id": "a1b2", "name": "unauthorized", "message": f"bad key {given}"}
            return web.json_response(body, status=401)
        return web.json_response({"credits": 42.5})

    app = web.Application()
    app.router.add_get("/v1/user/balance", balance)
    return app


class serve:
    """Run an aiohttp app on 127.0.0.1; yields its root URL."""

    def __init__(self, app: web.Application):
        self._runner = web.AppRunner(app, access_log=None)

    async def __aenter__(self) -> str:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()


async def test_stability_shows_credits(session: aiohttp.ClientSession) -> None:
    async with serve(stability_app()) as url:
        env = settings(STABILITY_API_KEY=STABILITY_KEY, STABILITY_API_HOST=url)
        health = await check_provider_health("stability", env, session)
    assert health.ok, health.detail
    assert health.model == "core"
    assert "42.50 credits" in health.detail
    assert health.sizes


async def test_stability_bad_key(session: aiohttp.ClientSession) -> None:
    async with serve(stability_app()) as url:
        env = settings(STABILITY_API_KEY="sk-wrong-stability-7", STABILITY_API_HOST=url)
        health = await check_provider_health("stability", env, session)
    assert not health.ok
    assert "STABILITY_API_KEY is refused (HTTP 401)" in health.detail
    assert "sk-wrong-stability-7" not in format_health([health])


# --------------------------------------------------------------------------- OpenAI images


async def test_dalle_lists_image_models(session: aiohttp.ClientSession) -> None:
    async with FakeOpenAI(api_key="sk-right-key-1") as fake:
        env = settings(OPENAI_API_KEY="sk-right-key-1", OPENAI_BASE_URL=fake.base_url)
        health = await check_provider_health("dalle", env, session)
    assert health.ok, health.detail
    assert health.model == "gpt-image-1"
    assert "gpt-image-1" in health.models and "dall-e-3" in health.models
    assert "1536x1024" in health.sizes


async def test_dalle_bad_key_never_shows_it(session: aiohttp.ClientSession) -> None:
    async with FakeOpenAI(api_key="sk-right-key-1") as fake:
        env = settings(OPENAI_API_KEY="sk-wrong-key-2222", OPENAI_BASE_URL=fake.base_url)
        health = await check_provider_health("dalle", env, session)
    assert not health.ok
    assert "OPENAI_API_KEY is refused" in health.detail
    assert "sk-wrong-key-2222" not in format_health([health])


async def test_openai_compatible_server_without_key(session: aiohttp.ClientSession) -> None:
    async with FakeOpenAI(accept_any_image_model=True) as fake:
        env = settings(OPENAI_BASE_URL=fake.base_url, IMAGEBOT_IMAGE_MODEL="stablediffusion")
        health = await check_provider_health("dalle", env, session)
        sent = fake.requests_to("/v1/models")
    assert health.ok, health.detail
    assert health.model == "stablediffusion"
    assert "gpt-4o-mini" in health.models  # a compatible server's whole list
    assert "does not list IMAGEBOT_IMAGE_MODEL 'stablediffusion'" in health.detail
    assert "authorization" not in {k.lower() for k in sent[0].headers}


async def test_openai_base_url_without_v1(session: aiohttp.ClientSession) -> None:
    async with FakeOpenAI() as fake:
        env = settings(OPENAI_BASE_URL=fake.root_url)
        health = await check_provider_health("dalle", env, session)
    assert not health.ok
    assert "not an OpenAI-compatible API root" in health.detail and "/v1" in health.detail


async def test_a_server_that_hangs_times_out(session: aiohttp.ClientSession) -> None:
    async with FakeOpenAI(hang_seconds=5) as fake:
        fake.fail_next("hang", path="/models")
        env = settings(OPENAI_BASE_URL=fake.base_url)
        health = await check_provider_health("dalle", env, session, timeout=0.2)
    assert not health.ok
    assert "did not answer within 0.2 s" in health.detail


# --------------------------------------------------------------------------- all, CLI


async def test_unconfigured_provider_says_what_to_set(session: aiohttp.ClientSession) -> None:
    health = await check_provider_health("comfyui", settings(), session)
    assert not health.ok and "set COMFYUI_URL" in health.detail


async def test_check_all_covers_every_configured_provider(
    session: aiohttp.ClientSession,
) -> None:
    async with FakeWebUI() as webui, FakeHorde() as horde:
        env = settings(STABLE_DIFFUSION_URL=webui.url, HORDE_URL=horde.url)
        healths = await check_all(env, session)
    assert [(h.provider_id, h.ok) for h in healths] == [
        ("stable-diffusion", True),
        ("horde", True),
        ("local", True),
    ]
    assert "3 of 3 providers answer" in format_health(healths)


def test_cli_providers_exit_0_when_all_answer(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeOnThread(FakeWebUI) as webui, FakeOnThread(FakeHorde) as horde:
        monkeypatch.setenv("STABLE_DIFFUSION_URL", webui.url)
        monkeypatch.setenv("HORDE_URL", horde.url)
        monkeypatch.setenv("IMAGEBOT_FALLBACK", "stable-diffusion,horde,local")
        status = main(["providers"])
    out = capsys.readouterr().out
    assert status == 0
    assert "[ok] stable-diffusion (default)" in out and CHECKPOINT in out and "[ok] local" in out
    assert "Fallback order: stable-diffusion, horde, local" in out


def test_cli_providers_exit_1_when_one_is_down(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeOnThread(FakeHorde) as horde:
        monkeypatch.setenv("STABLE_DIFFUSION_URL", f"http://127.0.0.1:{free_port()}")
        monkeypatch.setenv("HORDE_URL", horde.url)
        status = main(["providers", "--timeout", "2"])
    out = capsys.readouterr().out
    assert status == 1
    assert "[DOWN] stable-diffusion" in out and "cannot connect" in out
    assert "[ok] horde" in out
