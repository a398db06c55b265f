"""Which process owns an unfinished batch: each process holds a lock file while it lives, so
a batch left 'rendering' by a process that is gone (kill -9, Ctrl-C, a lost machine) can be
told from one still being made, and swept at the next start."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import uuid
from datetime import datetime
from pathlib import Path
from typing import IO

from imagebot.storage.archive import STAGING, Archive
from imagebot.storage.index import Index

log = logging.getLogger("imagebot.storage")
OWNERS = ".owners"


class ProcessOwner:
    """This process's claim: an exclusive lock on its own file, released only when it ends."""

    def __init__(self, root: Path):
        self.token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        folder = Path(root) / OWNERS
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{self.token}.lock"
        self._file: IO[bytes] | None = self.path.open("wb")
        fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def release(self) -> None:
        if self._file is not None:
            self.path.unlink(missing_ok=True)
            self._file.close()
            self._file = None


def owner_alive(root: Path, token: str | None) -> bool:
    """Whether the process that wrote `token` still holds its lock."""
    if not token:
        return False
    path = Path(root) / OWNERS / f"{token}.lock"
    try:
        with path.open("rb") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except FileNotFoundError:
        return False
    except BlockingIOError:
        return True
    path.unlink(missing_ok=True)  # we got the lock: its owner is gone
    return False


def sweep(archive: Archive, index: Index) -> list[str]:
    """Batches whose process is gone: finished in the index if their folder was published
    (the record was late), else failed; staging left by dead processes removed. Their ids."""
    live: set[str] = set()
    swept = []
    for row in index.db.query("select * from batches where status = 'rendering'"):
        if owner_alive(archive.root, row.get("owner")):
            live.add(row["id"])
            continue
        folder = _published(archive.root, row)
        if folder is not None:
            index.finish_batch(row["id"], status="complete", error=None, folder=str(folder))
        else:
            index.finish_batch(row["id"], status="failed", error="interrupted: its process ended")
        swept.append(row["id"])
    staging = archive.root / STAGING
    for leftover in staging.iterdir() if staging.is_dir() else ():
        if leftover.name not in live:
            archive.discard(leftover)
    if swept:
        log.info("marked %d batches of ended processes: %s", len(swept), ", ".join(swept))
    return swept


def _published(root: Path, row: dict) -> Path | None:
    """The folder a batch was published to, found by its time and id (the index missed it)."""
    try:
        created = datetime.strptime(row.get("created_at") or "", "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return None
    for folder in sorted(Path(root).glob(created.strftime("%Y%m%d-%H%M%S") + "-*")):
        try:
            if json.loads((folder / "info.json").read_text("utf-8")).get("id") == row["id"]:
                return folder
        except (OSError, ValueError):
            continue
    return None
