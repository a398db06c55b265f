"""The web app over plain HTTP on 127.0.0.1: pages and their status codes, what never gets
served (path traversal), CSRF on every state-changing form, sign-in, headers, and the chat
answered over Server-Sent Events."""

from __future__ import annotations

import asyncio
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from imagebot.providers.base import ConfigError
from tests.web_harness import WebWorld, web_world

TOKEN = "s3cret-moderator-token"


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf-token" content="([0-9a-f]+)"', html)
    assert match, "every page carries its CSRF token"
    return match[1]


def titles(html: str) -> list[str]:
    return re.findall(r'<span class="title">([^<]+)</span>', html)


async def csrf(world: WebWorld) -> str:
    response = await world.client.get("/chat")
    return csrf_of(await response.text())


async def test_gallery_lists_batches_newest_first_with_the_security_headers() -> None:
    async with web_world() as world:
        response = await world.client.get("/")
        assert response.status == 200
        html = await response.text()
        assert titles(html) == ["Bowl of ramen", "Lighthouse over a foggy harbour",
                                "Red fox in fresh snow"]  # fmt: skip
        assert f'src="/thumb/{world.batches[0]}/1"' in html
        headers = response.headers
        assert "default-src 'self'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Server-Timing"].startswith("app;dur=")
        session = response.cookies["ib_session"]
        assert session["httponly"] and session["samesite"] == "Lax"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("q=harbour", ["Lighthouse over a foggy harbour"]),
        ("q=Fox", ["Red fox in fresh snow"]),
        ("q=noodl", ["Bowl of ramen"]),  # the last word matches as a prefix
        ("q=winter", ["Red fox in fresh snow"]),  # tags are searched too
        ("q=study+harbour", ["Lighthouse over a foggy harbour"]),  # and descriptions
        ("q=harbour+ramen", []),  # every word must match
        ('q="*(OR)+NEAR', []),  # FTS5 syntax is never an error
        ("role=painter", ["Red fox in fresh snow"]),
        ("platform=telegram", ["Bowl of ramen"]),
        ("requester=discord-user", ["Lighthouse over a foggy harbour"]),
        ("provider=local&q=ramen", ["Bowl of ramen"]),
        ("since=2000-01-01&until=2000-01-02", []),
    ],
)
async def test_search_and_filters_narrow_the_gallery(query: str, expected: list[str]) -> None:
    async with web_world() as world:
        response = await world.client.get(f"/?{query}")
        assert response.status == 200
        assert titles(await response.text()) == expected


@pytest.mark.parametrize(
    ("url", "status", "words"),
    [
        ("/?since=yesterday", 400, "since must be a date as yyyy-mm-dd"),
        ("/?page=0", 400, "page must be a whole number"),
        ("/batch/0123456789ab", 404, "no such batch"),
        ("/batch/NOT-AN-ID", 404, "nothing at this address"),
        ("/nowhere", 404, "nothing at this address"),
    ],
)
async def test_bad_requests_get_one_sentence_and_their_status(
    url: str, status: int, words: str
) -> None:
    async with web_world(specs=[]) as world:
        response = await world.client.get(url)
        html = await response.text()
        assert response.status == status
        message = re.search(r'<p class="message">([^<]+)</p>', html)
        assert message and words in message[1].lower() and "Traceback" not in html


async def test_a_wrong_method_is_405_and_json_clients_get_json() -> None:
    async with web_world(specs=[]) as world:
        response = await world.client.get("/chat/send")
        assert response.status == 405 and "Traceback" not in await response.text()
        response = await world.client.get("/batch/abcdef", headers={"Accept": "application/json"})
        assert response.status == 404
        assert (await response.json())["error"] == "There is no such batch in the archive."


async def test_batch_page_shows_the_recipe_and_info_json_downloads_the_same_bytes() -> None:
    async with web_world() as world:
        batch_id = world.batches[1]
        row = world.ctx.services.index.get_batch(batch_id)
        info = json.loads((Path(row["folder"]) / "info.json").read_text())
        html = await (await world.client.get(f"/batch/{batch_id}")).text()
        assert "Lighthouse over a foggy harbour" in html
        assert "Lighthouse over a foggy harbour, harbour, fog, sea" in html  # the prompt
        for image in info["images"]:
            assert f"<code>{image['seed']}</code>" in html
            assert f"/batch/{batch_id}/files/{image['file']}" in html
        assert "cfg_scale" in html and "blurry" in html
        response = await world.client.get(f"/batch/{batch_id}/files/info.json")
        assert response.status == 200
        assert response.headers["Content-Disposition"] == 'attachment; filename="info.json"'
        assert await response.read() == (Path(row["folder"]) / "info.json").read_bytes()
        image = await world.client.get(f"/batch/{batch_id}/files/1.png")
        assert image.status == 200 and (await image.read())[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "url",
    [
        "/batch/{id}/files/..%2f..%2farchive.db",
        "/batch/{id}/files/%2e%2e%2finfo.json",
        "/batch/{id}/files/../../archive.db",
        "/batch/{id}/files/.web-secret",
        "/batch/{id}/files/info.json%00.png",
        "/batch/{id}/files/9.png",
        "/batch/..%2f..%2f/files/info.json",
        "/thumb/{id}/..%2f1",
        "/thumb/{id}/99",
        "/static/..%2fapp.py",
        "/static/../app.py",
        "/chat/files/..%2f..%2farchive.db",
    ],
)
async def test_nothing_outside_the_archive_is_served(url: str) -> None:
    async with web_world(specs=[("Only one", ["x"], "painter", "cli")]) as world:
        response = await world.client.get(url.format(id=world.batches[0]))
        body = await response.read()
        assert response.status in (400, 404)
        assert b"SQLite format" not in body and b"import" not in body


async def test_a_batch_whose_index_row_points_outside_the_archive_is_not_served(
    tmp_path: Path,
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "info.json").write_text('{"secret": true}')
    async with web_world(specs=[("Moved", ["x"], "painter", "cli")]) as world:
        db = world.ctx.services.index.db
        db.execute("update batches set folder = ? where id = ?", [str(outside), world.batches[0]])
        db.conn.commit()
        response = await world.client.get(f"/batch/{world.batches[0]}/files/info.json")
        assert response.status == 404 and b"secret" not in await response.read()


async def test_thumbnails_are_small_webp_made_once() -> None:
    async with web_world() as world:
        url = f"/thumb/{world.batches[0]}/1"
        first = await world.client.get(url)
        data = await first.read()
        assert first.status == 200 and first.headers["Content-Type"] == "image/webp"
        assert data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) <= 40 * 1024
        assert "immutable" in first.headers["Cache-Control"]
        thumbs = world.adapter.site.thumbs
        cached = thumbs.path(world.batches[0], 1)
        made_at = cached.stat().st_mtime_ns
        again = await asyncio.gather(*(world.client.get(url) for _ in range(5)))
        assert all([await r.read() == data for r in again])
        assert thumbs.made == 1 and cached.stat().st_mtime_ns == made_at
        assert cached.is_relative_to(world.ctx.services.archive.root / ".thumbs")


async def test_thumbnails_of_large_images_stay_under_40_kb(tmp_path: Path) -> None:
    import os

    from PIL import Image

    from imagebot.web.thumbs import encode_thumbnail

    noise = Image.frombytes("RGB", (1536, 1024), os.urandom(1536 * 1024 * 3))
    noise.save(tmp_path / "noise.png")
    assert len(encode_thumbnail(tmp_path / "noise.png")) <= 40 * 1024


@pytest.mark.parametrize(
    ("url", "fields"),
    [
        ("/chat/send", {"text": "/help"}),
        ("/chat/button", {"id": "ib:reroll:0123456789ab"}),
        ("/login", {"token": TOKEN}),
        ("/logout", {}),
        ("/batch/{id}/delete", {}),
    ],
)
async def test_every_state_changing_form_needs_its_csrf_token(
    url: str, fields: dict[str, str]
) -> None:
    async with web_world(
        {"IMAGEBOT_WEB_TOKEN": TOKEN}, specs=[("Kept", ["x"], "painter", "cli")]
    ) as world:  # noqa: E501
        target = url.format(id=world.batches[0])
        token = await csrf(world)
        missing = await world.client.post(target, data=fields)
        forged = await world.client.post(target, data={**fields, "csrf": "0" * 64})
        for response in (missing, forged):
            assert response.status == 403
            assert "did not come from this site" in await response.text()
        other = await world.client.post(target, data={**fields, "csrf": token}, cookies={
            "ib_session": "f" * 32})  # fmt: skip  # a token of another session
        assert other.status == 403
        folder = Path(world.ctx.services.index.get_batch(world.batches[0])["folder"])
        assert folder.is_dir()  # nothing was deleted


async def test_token_sign_in_sets_a_signed_httponly_cookie_and_unlocks_moderation() -> None:
    async with web_world({"IMAGEBOT_WEB_TOKEN": TOKEN}) as world:
        client = world.client
        for url in ("/queue", "/export.csv"):
            response = await client.get(url)
            assert response.status == 403 and "moderator" in await response.text()
        token = await csrf(world)
        wrong = await client.post("/login", data={"csrf": token, "token": "guess"})
        assert wrong.status == 403 and "not the moderator token" in await wrong.text()
        right = await client.post("/login", data={"csrf": token, "token": TOKEN},
                                  allow_redirects=False)  # fmt: skip
        assert right.status == 303
        cookie = right.cookies["ib_moderator"]
        assert cookie["httponly"] and cookie["samesite"] == "Strict"
        assert TOKEN not in cookie.value
        assert (await client.get("/queue")).status == 200
        export = await client.get("/export.csv")
        lines = (await export.text()).splitlines()
        assert lines[0].startswith("title,description,metatags,prompt,created_at")
        assert len(lines) == 4
        await client.post("/logout", data={"csrf": token})
        assert (await client.get("/queue")).status == 403


async def test_a_bearer_token_is_a_moderator_without_cookies() -> None:
    async with web_world({"IMAGEBOT_WEB_TOKEN": TOKEN}) as world:
        client = world.client
        wrong = await client.get("/export.csv", headers={"Authorization": "Bearer nope"})
        assert wrong.status == 403
        response = await client.get("/export.csv", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status == 200 and "Red fox in fresh snow" in await response.text()
        assert response.headers["Content-Disposition"] == 'attachment; filename="export.csv"'


async def test_on_loopback_without_a_token_the_local_user_moderates() -> None:
    async with web_world() as world:
        html = await (await world.client.get("/queue")).text()
        assert "Nothing is waiting or running." in html and "local moderator" in html


def test_a_public_address_without_a_token_refuses_to_start_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from imagebot.bot.cli import main

    assert main(["web", "--host", "0.0.0.0"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "IMAGEBOT_WEB_TOKEN" in line and "0.0.0.0" in line
    assert main(["web", "--port", "70000"]) == 2
    assert "port number" in capsys.readouterr().err


def test_web_settings_are_read_and_checked() -> None:
    from imagebot.bot.settings import Settings

    settings = Settings.from_env({"IMAGEBOT_WEB_HOST": "::1", "IMAGEBOT_WEB_PORT": "9001",
                                  "IMAGEBOT_WEB_TOKEN": TOKEN}, dotenv_path=None)  # fmt: skip
    assert (settings.web_host, settings.web_port) == ("::1", 9001)
    assert TOKEN not in repr(settings)
    with pytest.raises(ConfigError, match="IMAGEBOT_WEB_PORT"):
        Settings.from_env({"IMAGEBOT_WEB_PORT": "http"}, dotenv_path=None)


async def test_a_moderator_deletes_a_batch_from_the_archive() -> None:
    async with web_world() as world:
        victim = world.batches[0]
        folder = Path(world.ctx.services.index.get_batch(victim)["folder"])
        await world.client.get(f"/thumb/{victim}/1")
        token = await csrf(world)
        response = await world.client.post(f"/batch/{victim}/delete", data={"csrf": token},
                                           allow_redirects=False)  # fmt: skip
        assert response.status == 303
        assert not folder.exists()
        assert not world.adapter.site.thumbs.path(victim, 1).exists()
        assert (await world.client.get(f"/batch/{victim}")).status == 404
        assert "Red fox" not in await (await world.client.get("/")).text()
        assert "Red fox" not in await (await world.client.get("/?q=fox")).text()
        assert world.ctx.services.index.get_batch(victim)["status"] == "deleted"


async def test_a_visitor_cannot_delete_a_batch_when_a_token_is_set() -> None:
    async with web_world({"IMAGEBOT_WEB_TOKEN": TOKEN}) as world:
        token = await csrf(world)
        response = await world.client.post(f"/batch/{world.batches[0]}/delete",
                                           data={"csrf": token})  # fmt: skip
        assert response.status == 403
        assert (await world.client.get(f"/batch/{world.batches[0]}")).status == 200


class EventStream:
    """Reads the chat's Server-Sent Events as they come."""

    def __init__(self, response: Any) -> None:
        self.response = response

    async def next(self) -> dict[str, Any]:
        data = None
        while True:
            line = (await self.response.content.readline()).decode().rstrip("\n")
            if line.startswith("data: "):
                data = json.loads(line[6:])
            elif line == "" and data is not None:
                return data

    async def until(self, kind: str) -> list[dict[str, Any]]:
        seen = []
        while not seen or seen[-1]["type"] != kind:
            seen.append(await asyncio.wait_for(self.next(), 120))
        return seen


async def test_the_chat_generates_over_server_sent_events_and_rerolls() -> None:
    async with web_world(specs=[]) as world:
        client = world.client
        token = await csrf(world)
        stream = EventStream(await client.get("/chat/events"))
        text = "/generate 2 64x64 a foggy harbour"
        sent = await client.post("/chat/send", headers={"Accept": "application/json"},
                                 data={"csrf": token, "text": text, "request": "r1"})  # fmt: skip
        assert sent.status == 202
        events = await stream.until("images")
        kinds = [event["type"] for event in events]
        assert kinds[0] == "you" and "ack" in kinds and kinds[-1] == "images"
        post = events[-1]
        assert post["request"] == "r1" and len(post["images"]) == 2 and post["title"]
        assert post["tags"]
        for url in post["images"]:
            assert (await client.get(url)).status == 200
        row = world.ctx.services.index.get_batch(post["batch"])
        assert row["platform"] == "web" and row["theme"] == "a foggy harbour"
        reroll = next(b for row in post["buttons"] for b in row if b["id"].startswith("ib:reroll"))
        pressed = await client.post(
            "/chat/button",
            headers={"Accept": "application/json"},
            data={"csrf": token, "id": reroll["id"], "request": "r2"},
        )
        assert pressed.status == 202
        again = (await stream.until("images"))[-1]
        assert again["request"] == "r2" and again["batch"] != post["batch"]
        assert len(again["images"]) == 2
        # A reload shows the conversation again, drawn on the server (no script needed), and
        # the stream goes on from there; a stream from the start replays the backlog.
        html = await (await client.get("/chat")).text()
        assert html.count('class="post"') == 2 and post["images"][0] in html
        after = int(re.search(r'data-after="(\d+)"', html)[1])
        assert after > 0  # the script's stream starts after what the page shows
        replay = EventStream(await client.get("/chat/events"))
        assert (await replay.until("images"))[-1]["batch"] == post["batch"]


async def test_the_chat_answers_bad_input_and_unknown_buttons_in_one_line() -> None:
    async with web_world(specs=[]) as world:
        client = world.client
        token = await csrf(world)
        stream = EventStream(await client.get("/chat/events"))
        await client.post("/chat/send", data={"csrf": token, "text": "/generate 99"})
        [_, answer] = await stream.until("text")
        assert "count" in answer["text"].lower()
        await client.post("/chat/button", data={"csrf": token, "id": "ib:explode:123456"})
        [_, answer] = await stream.until("text")
        assert "not one of this bot's" in answer["text"]
        empty = await client.post("/chat/send", data={"csrf": token, "text": "  "})
        assert empty.status == 400


async def test_an_export_in_the_chat_is_a_download_for_that_visitor_only() -> None:
    async with web_world(specs=[]) as world:
        client = world.client
        token = await csrf(world)
        stream = EventStream(await client.get("/chat/events"))
        await client.post("/chat/send", data={"csrf": token, "text": "/export"})
        file_event = (await stream.until("file"))[-1]
        download = await client.get(file_event["url"])
        assert download.status == 200
        assert (await download.text()).startswith("title,description")
        stranger = await client.get(file_event["url"], cookies={"ib_session": "e" * 32})
        assert stranger.status == 404


async def test_a_web_job_accepted_before_a_restart_is_answered_after_it() -> None:
    session = {"ib_session": "a" * 32}
    async with web_world(specs=[], work=False) as world:
        token = csrf_of(await (await world.client.get("/chat", cookies=session)).text())
        fields = {"csrf": token, "text": "/generate 1 64x64 a foggy harbour", "request": "early"}
        sent = await world.client.post("/chat/send", cookies=session, data=fields,
                                       allow_redirects=False)  # fmt: skip
        assert sent.status == 303 and sent.headers["Location"] == "/chat"
        stream = EventStream(await world.client.get("/chat/events", cookies=session))
        waiting = (await stream.until("progress"))[-1]  # queued: no worker runs in this one
        assert "number 1 in the queue" in waiting["text"]
        queue = await (await world.client.get("/queue")).text()
        assert "generate" in queue and "accepted" in queue
    async with web_world(specs=[]) as world:  # the next process, on the same archive
        stream = EventStream(await world.client.get("/chat/events", cookies=session))
        post = (await stream.until("images"))[-1]
        assert post["request"] == "early" and len(post["images"]) == 1
        assert world.ctx.services.index.get_batch(post["batch"])["platform"] == "web"


async def test_imagebot_run_serves_the_web_app_beside_the_telegram_bot(tmp_path: Path) -> None:
    """One loop, one archive: a batch asked for on Telegram is in the web gallery."""
    import socket

    import aiohttp

    from imagebot.bot.app import run_bots
    from imagebot.bot.settings import Settings
    from tests.fakes.telegram_server import FakeTelegram

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with FakeTelegram("42:TEST") as fake:
        fake.chat(1001)
        environ = {
            "IMAGEBOT_OUTPUT_DIR": str(tmp_path / "output"),
            "TELEGRAM_TOKEN": "42:TEST",
            "TELEGRAM_API_BASE": fake.base_url,
            "IMAGEBOT_WEB_PORT": str(port),
        }
        settings = Settings.from_env(environ=environ, dotenv_path=None)
        task = asyncio.create_task(run_bots(settings, ["telegram"], web={}))
        try:
            fake.send_command(1001, 1001, "/generate 1 64x64 a foggy harbour")
            await fake.wait_for(lambda: [r for r in fake.sent if r.method == "sendPhoto"])
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{port}/?platform=telegram") as page:
                    assert page.status == 200
                    assert len(titles(await page.text())) == 1
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def test_the_chat_u1_button_answers_with_the_upscaled_file() -> None:
    async with web_world(specs=[]) as world:
        client = world.client
        token = await csrf(world)
        stream = EventStream(await client.get("/chat/events"))
        form = {"csrf": token, "text": "/generate 2 64x64", "request": "r1"}
        await client.post("/chat/send", headers={"Accept": "application/json"}, data=form)
        post = (await stream.until("images"))[-1]
        u1 = next(b for row in post["buttons"] for b in row if b["id"].startswith("ib:upscale"))
        assert u1["id"].endswith(":1")
        pressed = await client.post(
            "/chat/button",
            headers={"Accept": "application/json"},
            data={"csrf": token, "id": u1["id"], "request": "r2"},
        )
        assert pressed.status == 202
        answer = (await stream.until("file"))[-1]
        assert answer["name"] == "1-upscaled.png" and "upscaled to 128x128" in answer["text"]
        download = await client.get(answer["url"])
        assert download.status == 200
        from PIL import Image

        with Image.open(io.BytesIO(await download.read())) as picture:
            assert picture.size == (128, 128)
