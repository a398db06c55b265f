"""The S3 archive (IMAGEBOT_ARCHIVE_URL) against moto's server: batches land in the bucket
whole, the index and exports point there, and nothing is recorded when an upload fails."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import socket
import sqlite3
from pathlib import Path

import pytest
from PIL import Image

from imagebot.bot.cli import main
from imagebot.storage.archive import render_info_md
from tests.s3_server import S3Bucket

FILES = ["1.png", "2.png", "info.json", "info.md"]


def export_rows(capsys: pytest.CaptureFixture[str]) -> list[dict[str, str]]:
    assert main(["export"]) == 0
    return list(csv.DictReader(io.StringIO(capsys.readouterr().out)))


def generate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["generate", *args])
    out, err = capsys.readouterr()
    return status, out.strip(), err.strip()


def index_batches(tmp_path: Path) -> list[tuple[str, str | None]]:
    db = sqlite3.connect(tmp_path / "output" / "archive.db")
    try:
        return db.execute("select status, folder from batches").fetchall()
    finally:
        db.close()


def local_batch_folders(output: Path) -> list[Path]:
    return [p for p in output.iterdir() if p.is_dir() and not p.name.startswith(".")]


def test_generate_puts_the_whole_batch_in_the_bucket(
    s3_bucket: S3Bucket, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, folder, err = generate(capsys, "2", "256x256", "--theme", "a foggy harbour")
    assert status == 0, err
    assert folder.startswith(f"{s3_bucket.url}/")
    name = folder.rsplit("/", 1)[1]
    assert s3_bucket.keys() == sorted(f"archive/{name}/{file}" for file in FILES)

    info = json.loads(s3_bucket.read(f"archive/{name}/info.json"))
    assert info["theme"] == "a foggy harbour" and info["size"] == "256x256"
    for entry in info["images"]:
        data = s3_bucket.read(f"archive/{name}/{entry['file']}")
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert Image.open(io.BytesIO(data)).size == (256, 256)
    # The same info files as a local archive writes (same writer, same bytes).
    assert s3_bucket.read(f"archive/{name}/info.md").decode() == render_info_md(info)
    assert s3_bucket.read(f"archive/{name}/info.json").decode() == json.dumps(
        info, ensure_ascii=False, indent=2
    )

    output = tmp_path / "output"
    assert local_batch_folders(output) == []  # no local batch folder
    assert not any((output / ".staging").iterdir())  # staging removed after the upload
    [row] = export_rows(capsys)
    assert row["folder"] == folder  # the index row points at the bucket


def test_a_missing_bucket_records_nothing_and_says_so(
    s3_bucket: S3Bucket,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("IMAGEBOT_ARCHIVE_URL", "s3://no-such-bucket-here/archive")
    status, out, err = generate(capsys, "2", "256x256")
    assert status == 1 and out == ""
    assert err.splitlines() == [
        "imagebot: failed: archive: could not upload the batch to s3://no-such-bucket-here/"
        "archive (NoSuchBucket: The specified bucket does not exist); it was not recorded"
    ]
    assert export_rows(capsys) == []
    assert index_batches(tmp_path) == [("failed", None)]  # no row claims a folder
    assert s3_bucket.keys() == []


def test_an_unreachable_store_records_nothing_and_says_so(
    s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as probe:  # a port where no store listens (the store is down)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("IMAGEBOT_S3_ENDPOINT", f"http://127.0.0.1:{port}")
    status, out, err = generate(capsys, "2", "256x256")
    assert status == 1 and out == ""
    assert err.splitlines() == [
        f"imagebot: failed: archive: could not upload the batch to {s3_bucket.url} "
        "(the object store could not be reached); it was not recorded"
    ]
    assert export_rows(capsys) == []
    assert s3_bucket.keys() == []


def test_upscale_reads_and_writes_the_bucket(
    s3_bucket: S3Bucket, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, folder, err = generate(capsys, "2", "256x256")
    assert status == 0, err
    # No local copy: the source image must come from the bucket.
    for cached in (tmp_path / "output" / ".s3cache").iterdir():
        for file in cached.iterdir():
            file.unlink()
        cached.rmdir()
    assert main(["upscale", folder, "2"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == f"{folder}/2-upscaled.png", err
    name = folder.rsplit("/", 1)[1]
    upscaled = s3_bucket.read(f"archive/{name}/2-upscaled.png")
    assert Image.open(io.BytesIO(upscaled)).size == (512, 512)
    info = json.loads(s3_bucket.read(f"archive/{name}/info.json"))
    assert [(u["image"], u["file"]) for u in info["upscales"]] == [(2, "2-upscaled.png")]


async def test_two_processes_publishing_one_name_never_mix_their_files(
    s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    from imagebot.storage.object_store import ObjectStore

    folders = []
    for who in ("first", "second"):
        staging = tmp_path / who
        staging.mkdir()
        for file in ("1.png", "2.png", "info.md", "info.json"):
            (staging / file).write_text(f"{who} {file}")
        folders.append(staging)
    # Two stores: as two processes would, racing for the same folder name.
    stores = [ObjectStore(s3_bucket.url, s3_bucket.endpoint) for _ in folders]
    urls = await asyncio.gather(
        *(
            store.upload_folder(folder, "20260101-000000-fox")
            for store, folder in zip(stores, folders, strict=True)
        )
    )
    base = f"{s3_bucket.url}/20260101-000000-fox"
    assert sorted(urls) == [base, f"{base}-2"]
    for url, folder in zip(urls, folders, strict=True):
        name = url.rsplit("/", 1)[1]
        for file in ("1.png", "2.png", "info.md", "info.json"):
            assert s3_bucket.read(f"archive/{name}/{file}").decode() == f"{folder.name} {file}"
