"""The web app's test harness: an archive made of real batches (the offline `local` renderer),
and the app served on 127.0.0.1 by a real aiohttp server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from imagebot.bot.app import BotContext, build_context, build_web
from imagebot.bot.settings import Settings
from imagebot.commands.generate import parse_generate, render_batch
from imagebot.commands.requester import Requester
from imagebot.providers.base import PromptSpec

SPECS = [
    ("Red fox in fresh snow", ["fox", "winter"], "painter", "cli"),
    (
        "Lighthouse over a foggy harbour",
        ["harbour", "fog", "sea"],
        "landscape-photographer",
        "discord",
    ),
    ("Bowl of ramen", ["food", "noodles"], "food-photographer", "telegram"),
]


@dataclass
class WebWorld:
    ctx: BotContext
    client: TestClient
    adapter: Any
    batches: list[str]  # ids, oldest first


async def make_batch(
    ctx: BotContext, title: str, tags: list[str], role: str = "painter", platform: str = "cli"
) -> str:
    """One real archived batch of two 64x64 images on the `local` renderer."""
    spec = PromptSpec(
        title=title,
        description=f"A study: {title.lower()}.",
        metatags=tags,
        prompt=f"{title}, {', '.join(tags)}",
        negative_prompt="blurry",
        role=role,
        settings={"steps": 20, "cfg_scale": 7},
    )
    who = Requester(platform, "42", f"{platform}-user", "7") if platform != "cli" else None
    request = parse_generate(
        ctx.services.config, count=2, size="64x64", provider="local", role=role,
        **({"requester": who} if who else {}),
    )  # fmt: skip
    result = await render_batch(ctx.services, request, spec)
    assert result.folder is not None
    return result.batch_id


@asynccontextmanager
async def web_world(
    environ: dict[str, str] | None = None,
    *,
    specs: list[tuple] | None = None,
    work: bool = True,
    **options: Any,
) -> AsyncIterator[WebWorld]:
    """The app over an archive with `specs` added (newest last); its runtime started unless
    `work` is false (jobs are then accepted and kept, as by a process killed before work)."""
    import os

    settings = Settings.from_env({**os.environ, **(environ or {})}, dotenv_path=None)
    ctx = build_context(settings)
    ids = []
    for title, tags, role, platform in SPECS if specs is None else specs:
        ids.append(await make_batch(ctx, title, tags, role, platform))
        await asyncio.sleep(0)
    adapter = build_web(ctx, **options)
    client = TestClient(TestServer(adapter.app, host="127.0.0.1"))
    if work:
        await ctx.runtime.start()
    await client.start_server()
    try:
        yield WebWorld(ctx, client, adapter, ids)
    finally:
        adapter.site.closing.set()
        await client.close()
        await adapter.stop()
        await ctx.runtime.stop()
        await ctx.services.aclose()
