"""Shared fixtures: every test runs in its own folder with no keys in the environment."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.recording_port import StubControls, install_stub

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# The Discord fake and a running bot (fixtures `fake` and `bot`) for the Discord e2e tests;
# a real PostgreSQL server (fixtures `postgres_server`, `postgres_url`); moto S3 (`s3_bucket`).
pytest_plugins = ["tests.discord_harness", "tests.postgres_server", "tests.s3_server"]

SECRET_PREFIXES = ("OPENAI_", "STABILITY_", "HORDE_", "DISCORD_", "TELEGRAM_", "IMAGEBOT_")
SECRET_NAMES = ("STABLE_DIFFUSION_URL", "COMFYUI_URL")
DISCORD_REST_BASE = "https://discord.com/api/v10"  # discord.py's own defaults
DISCORD_GATEWAY = "wss://gateway.discord.gg/"


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Clear every imagebot/API variable, work in tmp_path, archive into tmp_path/output."""
    for name in list(os.environ):
        if name.startswith(SECRET_PREFIXES) or name in SECRET_NAMES:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IMAGEBOT_OUTPUT_DIR", str(tmp_path / "output"))
    return tmp_path


@pytest.fixture(autouse=True)
def discord_defaults() -> Iterator[None]:
    """Put back discord.py's REST base and gateway URL, which the adapter points at a fake."""
    yield
    if "discord" in sys.modules:
        import discord
        import yarl
        from discord.gateway import DiscordWebSocket

        discord.http.Route.BASE = DISCORD_REST_BASE
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(DISCORD_GATEWAY)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """One aiohttp session for a provider test (closed after it)."""
    async with aiohttp.ClientSession() as http:
        yield http


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> StubControls:
    """The gated stub provider installed as every provider (tests.recording_port)."""
    return install_stub(monkeypatch)
