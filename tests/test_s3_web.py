"""The web app over an S3 archive: the batch page, its files and thumbnails come from the
bucket (streamed through the app), byte for byte."""

from __future__ import annotations

import io
import re
import shutil
import socket
from pathlib import Path

from PIL import Image

from tests.s3_server import S3Bucket
from tests.web_harness import web_world

SPECS = [("Lighthouse over a foggy harbour", ["harbour", "fog"], "painter", "cli")]


async def test_batch_page_and_files_come_from_the_bucket(
    s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    async with web_world(specs=SPECS) as world:
        [batch_id] = world.batches
        row = world.ctx.services.index.get_batch(batch_id)
        assert row["folder"].startswith(f"{s3_bucket.url}/")
        prefix = "archive/" + row["folder"].rsplit("/", 1)[1]
        # Another machine's front: no local copy of the batch at all.
        shutil.rmtree(tmp_path / "output" / ".s3cache")

        page = await world.client.get(f"/batch/{batch_id}")
        assert page.status == 200
        html = await page.text()
        assert "Lighthouse over a foggy harbour" in html
        assert f"/batch/{batch_id}/files/1.png" in html

        for name in ("info.json", "info.md", "1.png", "2.png"):
            response = await world.client.get(f"/batch/{batch_id}/files/{name}")
            assert response.status == 200, name
            assert await response.read() == s3_bucket.read(f"{prefix}/{name}")
        download = await world.client.get(f"/batch/{batch_id}/files/info.json")
        assert download.headers["Content-Disposition"] == 'attachment; filename="info.json"'
        assert download.headers["Content-Type"].startswith("application/json")

        thumb = await world.client.get(f"/thumb/{batch_id}/1")
        assert thumb.status == 200 and thumb.headers["Content-Type"] == "image/webp"
        assert Image.open(io.BytesIO(await thumb.read())).format == "WEBP"

        missing = await world.client.get(f"/batch/{batch_id}/files/3.png")
        assert missing.status == 404
        assert "There is no such file in this batch." in await missing.text()


async def test_a_moderator_deletes_an_s3_batch_from_the_bucket(s3_bucket: S3Bucket) -> None:
    async with web_world(specs=SPECS) as world:
        [victim] = world.batches
        assert len(s3_bucket.keys()) == 4
        page = await world.client.get("/chat")
        token = re.search(r'name="csrf-token" content="([0-9a-f]+)"', await page.text())[1]
        response = await world.client.post(
            f"/batch/{victim}/delete", data={"csrf": token}, allow_redirects=False
        )
        assert response.status == 303
        assert s3_bucket.keys() == []
        assert (await world.client.get(f"/batch/{victim}")).status == 404
        assert world.ctx.services.index.get_batch(victim)["status"] == "deleted"


async def test_a_store_that_is_down_gets_a_503_and_one_sentence(
    s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    from imagebot.storage.object_store import ObjectStore

    async with web_world(specs=SPECS) as world:
        [batch_id] = world.batches
        shutil.rmtree(tmp_path / "output" / ".s3cache")
        with socket.socket() as probe:  # a port where no store listens
            probe.bind(("127.0.0.1", 0))
            dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
        world.ctx.services.archive.store = ObjectStore(s3_bucket.url, dead)
        for path in (f"/batch/{batch_id}", f"/batch/{batch_id}/files/1.png"):
            response = await world.client.get(path)
            assert response.status == 503, path
            assert "file store cannot be reached" in await response.text()
