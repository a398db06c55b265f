"""A Discord /generate with the S3 archive: the batch is posted from the bucket's files, and a
job resumed on a machine with no copy of them still posts the right images."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from tests.discord_harness import offline_settings, posted_batch, start_bot, stop_bot
from tests.fakes.discord_server import FakeDiscord
from tests.s3_server import S3Bucket


async def test_a_discord_batch_is_archived_in_the_bucket_and_posted(
    s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    async with FakeDiscord() as fake:
        settings = offline_settings(
            fake, tmp_path, IMAGEBOT_ARCHIVE_URL=s3_bucket.url,
            IMAGEBOT_S3_ENDPOINT=s3_bucket.endpoint,
        )  # fmt: skip
        running = await start_bot(settings)
        try:
            record = await fake.send_slash_command("generate", {"count": 2, "size": "64x64"})
            message = await posted_batch(fake, record, "the batch")
            [row] = running.ctx.services.index.db.query("select * from batches")
            assert row["folder"].startswith(f"{s3_bucket.url}/")
            prefix = "archive/" + row["folder"].rsplit("/", 1)[1]
            info = json.loads(s3_bucket.read(f"{prefix}/info.json"))
            posted = [attachment.data for attachment in message.attachments]
            assert [hashlib.sha256(d).hexdigest() for d in posted] == [
                image["sha256"] for image in info["images"]
            ]

            # Another machine (no local copy) posting the same batch fetches it from S3.
            archive = running.ctx.services.archive
            shutil.rmtree(archive.cache_folder(row["folder"]))
            local = await archive.fetch_local(row["folder"])
            assert local is not None
            assert sorted(p.name for p in local.iterdir()) == [
                "1.png",
                "2.png",
                "info.json",
                "info.md",
            ]
            assert (local / "1.png").read_bytes() == s3_bucket.read(f"{prefix}/1.png")
        finally:
            await stop_bot(running)


async def test_u2_on_an_s3_batch_upscales_from_the_bucket_into_it(
    s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    async with FakeDiscord() as fake:
        settings = offline_settings(
            fake, tmp_path, IMAGEBOT_ARCHIVE_URL=s3_bucket.url,
            IMAGEBOT_S3_ENDPOINT=s3_bucket.endpoint,
        )  # fmt: skip
        running = await start_bot(settings)
        try:
            record = await fake.send_slash_command("generate", {"count": 2, "size": "64x64"})
            post = await posted_batch(fake, record, "the batch")
            [row] = running.ctx.services.index.db.query("select * from batches")
            # The button is pressed on a machine with no copy of the batch.
            shutil.rmtree(running.ctx.services.archive.cache_folder(row["folder"]))
            u2 = next(
                i for i in post.custom_ids if i.startswith("ib:upscale:") and i.endswith(":2")
            )
            click = await fake.click_button(post, u2)
            [answer] = await fake.wait_for(
                lambda: [m for m in fake.messages_for_interaction(click.id) if m.attachments],
                what="the upscaled file",
            )
            [attachment] = answer.attachments
            prefix = "archive/" + row["folder"].rsplit("/", 1)[1]
            assert attachment.filename == "2-upscaled.png"
            assert attachment.data == s3_bucket.read(f"{prefix}/2-upscaled.png")
            info = json.loads(s3_bucket.read(f"{prefix}/info.json"))
            assert [(u["image"], u["width"]) for u in info["upscales"]] == [(2, 128)]
        finally:
            await stop_bot(running)
