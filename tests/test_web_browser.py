"""The web app in a real headless browser: Debian's chromium, driven by playwright (which never
downloads a browser here). Run alone with `pytest -m browser`. On CI (CI=1) a missing chromium
fails loudly; elsewhere these tests are skipped with the reason."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.web_harness import web_world

pytestmark = pytest.mark.browser
CHROMIUM = os.environ.get("IMAGEBOT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
TOKEN = "browser-moderator-token"
WAIT = 120_000  # ms: a generous bound on a loaded machine, never a timing assertion


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if not Path(CHROMIUM).is_file():
        message = f"chromium is not installed at {CHROMIUM} (apt-get install -y chromium)"
        if os.environ.get("CI") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.async_api import async_playwright

    async with async_playwright() as driver:
        browser = await driver.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        try:
            yield browser
        finally:
            await browser.close()


async def wait_until(page: Any, script: str, bound: float = WAIT / 1000) -> None:
    """Poll `script` (a JS expression) until it is true. Playwright's wait_for_function would
    build a function from a string in the page, which the app's CSP (no unsafe-eval) refuses."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + bound
    while not await page.evaluate(f"() => Boolean({script})"):
        assert loop.time() < deadline, f"never true: {script}"
        await asyncio.sleep(0.05)


def base(world: Any) -> str:
    return str(world.client.make_url("/")).rstrip("/")


async def test_gallery_shows_loaded_thumbnails_newest_first_and_search_and_filter_narrow_it(
    browser: Any,
) -> None:
    async with web_world() as world:
        page = await browser.new_page()
        await page.goto(base(world) + "/")
        cards = page.locator("#gallery .card")
        newest_first = ["Bowl of ramen", "Lighthouse over a foggy harbour", "Red fox in fresh snow"]
        assert await cards.locator(".title").all_inner_texts() == newest_first
        await wait_until(
            page,
            "[...document.querySelectorAll('#gallery img')].every(i => i.complete && "
            "i.naturalWidth > 0)",
        )
        await page.fill("input[name=q]", "harbour")
        await page.click("form.filters button[type=submit]")
        await page.wait_for_url("**/?q=harbour**")
        assert await cards.locator(".title").all_inner_texts() == [
            "Lighthouse over a foggy harbour"]  # fmt: skip
        await page.goto(base(world) + "/")
        await page.select_option("select[name=role]", "painter")
        await page.click("form.filters button[type=submit]")
        await page.wait_for_url("**role=painter**")
        assert await cards.locator(".title").all_inner_texts() == ["Red fox in fresh snow"]


async def test_batch_page_shows_the_recipe_and_downloads_info_json(browser: Any) -> None:
    async with web_world() as world:
        batch_id = world.batches[1]
        folder = Path(world.ctx.services.index.get_batch(batch_id)["folder"])
        page = await browser.new_page(accept_downloads=True)
        await page.goto(f"{base(world)}/batch/{batch_id}")
        recipe = await page.locator("section.recipe").inner_text()
        assert "Lighthouse over a foggy harbour, harbour, fog, sea" in recipe
        assert "blurry" in recipe and "local" in recipe and "cfg_scale" in recipe
        await wait_until(
            page, "[...document.querySelectorAll('.images img')].every(i => i.naturalWidth > 0)"
        )
        async with page.expect_download() as waiting:
            await page.click("text=info.json")
        download = await waiting.value
        assert Path(await download.path()).read_bytes() == (folder / "info.json").read_bytes()


async def test_chat_page_generates_images_and_rerolls(browser: Any) -> None:
    async with web_world(specs=[]) as world:
        page = await browser.new_page()
        await page.goto(base(world) + "/chat")
        await page.fill("#chat-text", "/generate 2 256x256 a foggy harbour")
        await page.press("#chat-text", "Enter")
        first = page.locator(".post").first
        await first.wait_for(timeout=WAIT)
        await wait_until(
            page,
            "document.querySelectorAll('.post img').length === 2 && "
            "[...document.querySelectorAll('.post img')].every(i => i.naturalWidth === 256)",
        )
        assert await first.locator(".post-title").inner_text()
        assert await first.locator(".tags li").count() > 0
        batch = await first.get_attribute("data-batch")
        assert world.ctx.services.index.get_batch(batch)["platform"] == "web"
        await first.locator("button.chat-button", has_text="Re-roll").click()
        await page.locator(".post").nth(1).wait_for(timeout=WAIT)
        second = await page.locator(".post").nth(1).get_attribute("data-batch")
        assert second != batch
        await wait_until(page, "document.querySelectorAll('.post img').length === 4")
        await page.reload()  # the server draws the conversation; the stream adds no copy
        assert await page.locator(".post").count() == 2
        await page.fill("#chat-text", "/help")
        await page.press("#chat-text", "Enter")
        await page.locator(".bot.text", has_text="/generate").first.wait_for(timeout=WAIT)
        assert await page.locator(".post").count() == 2


async def test_token_login_and_export(browser: Any) -> None:
    async with web_world({"IMAGEBOT_WEB_TOKEN": TOKEN}) as world:
        page = await browser.new_page(accept_downloads=True)
        response = await page.goto(base(world) + "/queue")
        assert response.status == 403
        await page.click("text=Moderator sign-in")
        await page.fill("input[name=token]", "wrong")
        await page.click("button[type=submit]")
        assert "not the moderator token" in await page.locator("main").inner_text()
        await page.fill("input[name=token]", TOKEN)
        await page.click("button[type=submit]")
        await page.wait_for_selector("text=Sign out")
        async with page.expect_download() as waiting:
            await page.click("text=Export CSV")
        download = await waiting.value
        text = Path(await download.path()).read_text(encoding="utf-8")
        assert text.startswith("title,description,metatags,prompt,created_at")
        assert "Red fox in fresh snow" in text
        cookies = {c["name"]: c for c in await page.context.cookies()}
        assert cookies["ib_moderator"]["httpOnly"] and TOKEN not in cookies["ib_moderator"]["value"]
