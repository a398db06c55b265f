"""Batch folders in an S3-compatible object store (IMAGEBOT_ARCHIVE_URL, SPEC §2, §9).

obstore (Rust's object_store under asyncio) rather than aiobotocore: one small wheel with no
botocore, sessions or context managers, async calls that need no client lifetime of our own,
conditional puts (PutMode "create") to claim a folder name, and the usual AWS_* variables
read by the store itself.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

S3_URL = re.compile(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(.*))?")
INFO_LAST = ("info.md", "info.json")  # info.json goes last: a folder with it is whole


class ArchiveUploadError(Exception):
    """The object store refused or could not be reached; nothing was recorded."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def is_remote(folder: str | Path | None) -> bool:
    """Whether an index row's folder is an object store URL rather than a local path."""
    return isinstance(folder, str) and folder.startswith("s3://")


class ObjectStore:
    """One bucket and prefix; every key is `<folder>/<file>` below the prefix."""

    def __init__(self, url: str, endpoint: str | None = None) -> None:
        from obstore.store import S3Store

        match = S3_URL.fullmatch(url.rstrip("/"))
        if match is None:
            raise ValueError(f"not an s3://bucket/prefix URL: {url!r}")
        self.url = url.rstrip("/")
        self.bucket = match[1]
        self.prefix = (match[2] or "").strip("/")
        config: dict[str, object] = {}
        if endpoint:
            # Any S3-compatible store (MinIO, Ceph, R2, a test server): path-style requests.
            config = {"endpoint": endpoint.rstrip("/"), "virtual_hosted_style_request": False}
        self._store = S3Store(
            self.bucket,
            prefix=self.prefix or None,
            client_options={
                "allow_http": bool(endpoint and endpoint.startswith("http://")),
                "connect_timeout": timedelta(seconds=5),
                "timeout": timedelta(seconds=60),
            },
            retry_config={"max_retries": 2, "retry_timeout": timedelta(seconds=20)},
            **config,
        )

    def folder_url(self, name: str) -> str:
        """What the index records for the batch folder `name`."""
        return f"{self.url}/{name}"

    def key(self, folder_url: str, name: str) -> str:
        """The key of file `name` of a folder URL of this store; ValueError for another."""
        head = self.url + "/"
        folder = folder_url[len(head) :] if folder_url.startswith(head) else ""
        if not folder or "/" in folder or "/" in name or name in ("", ".", ".."):
            raise ValueError(f"{folder_url!r} is not a batch folder of {self.url}")
        return f"{folder}/{name}"

    async def put(self, key: str, data: bytes, *, create: bool = False) -> None:
        """Store `data`; with `create`, FileExistsError when the key is already there."""
        import obstore
        from obstore.exceptions import AlreadyExistsError, PreconditionError

        try:
            await obstore.put_async(self._store, key, data, mode="create" if create else None)
        except (AlreadyExistsError, PreconditionError) as exc:
            raise FileExistsError(key) from exc

    async def get(self, key: str) -> bytes:
        """The object's bytes; FileNotFoundError when there is none."""
        import obstore

        result = await obstore.get_async(self._store, key)
        return bytes(await result.bytes_async())

    async def exists(self, key: str) -> bool:
        import obstore

        try:
            await obstore.head_async(self._store, key)
        except FileNotFoundError:
            return False
        return True

    async def delete(self, keys: Iterable[str]) -> None:
        import obstore

        await obstore.delete_async(self._store, list(keys))

    async def list_folder(self, folder_url: str) -> list[str]:
        """The file names of one folder (for deleting it whole)."""
        import obstore

        folder = self.key(folder_url, "x")[:-1]
        names: list[str] = []
        async for chunk in obstore.list(self._store, prefix=folder):
            names += [meta["path"][len(folder) :] for meta in chunk]
        return names

    async def upload_folder(self, staging: Path, base: str) -> str:
        """Every file of `staging` under a free folder name from `base`; returns its URL.

        Every put is conditional (PutMode "create"): the first file claims the name, so a
        name another process is filling is never overwritten and this batch moves on to
        `-2`, `-3`, ... The other images go up in parallel, then info.md, info.json last."""
        files = sorted(p.name for p in staging.iterdir() if p.is_file() and p.name[0] != ".")
        images = [name for name in files if name not in INFO_LAST]
        steps = [images[:1], images[1:]] + [[n] for n in INFO_LAST if n in files]
        try:
            for suffix in range(1, 10_000):
                name = base if suffix == 1 else f"{base}-{suffix}"
                if await self.exists(f"{name}/info.json"):
                    continue
                try:
                    for step in steps:
                        await asyncio.gather(*(self._put_file(staging, name, f) for f in step))
                except FileExistsError:  # another process claimed the name meanwhile
                    continue
                except Exception:
                    await self._forget(f"{name}/{file}" for file in files)
                    raise
                return self.folder_url(name)
        except Exception as exc:
            raise ArchiveUploadError(
                f"could not upload the batch to {self.url} ({describe(exc)}); it was not recorded"
            ) from exc
        raise ArchiveUploadError(f"no free folder name for {base} in {self.url}")

    async def _put_file(self, staging: Path, folder: str, file: str) -> None:
        data = await asyncio.to_thread((staging / file).read_bytes)
        await self.put(f"{folder}/{file}", data, create=True)

    async def _forget(self, keys: Iterable[str]) -> None:
        """Best effort: a half-uploaded folder has no info.json, so nothing lists it anyway."""
        try:
            await self.delete(keys)
        except Exception:
            pass


ERROR_XML = re.compile(r"<Code>([^<]*)</Code>\s*<Message>([^<]*)</Message>")


def describe(exc: BaseException) -> str:
    """One line for a store failure: the store's error code and message, or what failed."""
    text = str(exc)
    found = ERROR_XML.search(text)
    if found:
        return f"{found[1]}: {found[2]}"
    if "error sending request" in text or "connect" in text.lower():
        return "the object store could not be reached"
    first = text.splitlines()[0] if text else type(exc).__name__
    return re.sub(r"https?://\S+", "", first)[:200]
