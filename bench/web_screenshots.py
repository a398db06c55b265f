"""Screenshots of the web app for the README: a fresh archive of offline renders (`local`
provider, `templates` prompts), served on 127.0.0.1 and shot in Debian's headless chromium.

    .venv/bin/python bench/web_screenshots.py   # writes docs/web-gallery.png, docs/web-batch.png
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

THEMES = ["a foggy harbour", "a fox in the snow", "a night market", "a mountain lake",
          "a dragon's lair", "a bowl of ramen", "a neon city", "an old lighthouse"]  # fmt: skip


LOADED = "[...document.images].every(i => i.complete && i.naturalWidth > 0)"


async def wait_until(page: object, script: str) -> None:
    # Polled from here: wait_for_function would eval in the page, which the CSP forbids.
    while not await page.evaluate(f"() => Boolean({script})"):  # type: ignore[attr-defined]
        await asyncio.sleep(0.05)


async def shoot(docs: Path) -> None:
    from playwright.async_api import async_playwright

    from imagebot.commands.generate import generate, parse_generate
    from tests.web_harness import web_world

    async with web_world(specs=[]) as world:
        ids = []
        for n, theme in enumerate(THEMES):
            request = parse_generate(world.ctx.services.config, count=4, size="384x384",
                                     provider="local", theme=theme)  # fmt: skip
            request = request.__class__(**{**vars(request), "seed": 1000 + n})
            ids += [result.batch_id for result in await generate(world.ctx.services, request)]
        base = str(world.client.make_url("/")).rstrip("/")
        async with async_playwright() as driver:
            browser = await driver.chromium.launch(executable_path="/usr/bin/chromium",
                                                   args=["--no-sandbox"])  # fmt: skip
            page = await browser.new_page(viewport={"width": 1200, "height": 820})
            await page.goto(base + "/")
            await wait_until(page, LOADED)
            await page.screenshot(path=str(docs / "web-gallery.png"))
            await page.goto(f"{base}/batch/{ids[0]}")
            await wait_until(page, LOADED)
            await page.screenshot(path=str(docs / "web-batch.png"), full_page=True)
            await browser.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for name in list(os.environ):
            if name.startswith(("IMAGEBOT_", "OPENAI_")):
                del os.environ[name]
        os.environ["IMAGEBOT_OUTPUT_DIR"] = str(Path(tmp) / "output")
        os.chdir(tmp)
        asyncio.run(shoot(ROOT / "docs"))
    print("docs/web-gallery.png, docs/web-batch.png")


if __name__ == "__main__":
    main()
