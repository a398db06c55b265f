"""The SQLite index of batches and prompt lists (sqlite-utils, with migrations)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from imagebot.storage.schema import migrations
from imagebot.storage.transactions import writing


def insert_row(db: Database, table: str, row: dict[str, Any]) -> None:
    """One row in its own transaction, as plain SQL: sqlite-utils' insert inspects the table
    first, and this runs for every job and batch of a busy bot."""
    columns = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    with writing(db):
        db.execute(f"insert into {table} ({columns}) values ({marks})", list(row.values()))


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """ISO 8601 UTC with a Z, to the second."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


BUSY_TIMEOUT = 30.0  # seconds one attempt waits for another writer (storage.transactions retries)


class BadIndex(Exception):
    """The index file cannot be used (not a database, read-only, ...); it was left untouched."""


class Index:
    """One SQLite file holding everything the bot must remember."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT, check_same_thread=False)
            self.db = Database(conn)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            with writing(self.db):  # processes opening a new archive at once migrate in turn
                migrations.apply(self.db)
        except sqlite3.DatabaseError as exc:
            # Never "repair" a file we cannot read: it may be someone's data.
            raise BadIndex(
                f"the index {self.path} cannot be used ({exc}); it was left untouched: move it "
                "aside, or point IMAGEBOT_DB at another file"
            ) from None
        except OSError as exc:
            raise BadIndex(
                f"the index {self.path} cannot be created ({exc.strerror or exc}); "
                "check IMAGEBOT_DB and IMAGEBOT_OUTPUT_DIR"
            ) from None

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def reader(self) -> Iterator[sqlite3.Connection]:
        """A read-only connection of its own, for long reads in a worker thread (exports):
        WAL lets it read while the bot writes, and the shared connection stays the loop's."""
        if str(self.path) == ":memory:":
            yield self.db.conn
            return
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
        try:
            yield conn
        finally:
            conn.close()

    # ---------------------------------------------------------------- batches

    def start_batch(self, row: dict[str, Any]) -> None:
        """Record a batch before rendering, so a crash leaves it marked, never unknown."""
        insert_row(self.db, "batches", {**row, "status": "rendering", "image_count": 0})

    def finish_batch(self, batch_id: str, *, status: str, error: str | None, **fields: Any) -> None:
        """Mark a batch complete, partial or failed, with what it became (folder, count...)."""
        values = {"status": status, "error": error, **fields}
        assignments = ", ".join(f"{column} = ?" for column in values)
        with writing(self.db):
            self.db.execute(
                f"update batches set {assignments} where id = ?", [*values.values(), batch_id]
            )

    def get_batch(self, batch_id: str) -> dict[str, Any] | None:
        rows = list(self.db.query("select * from batches where id = ?", [batch_id]))
        return rows[0] if rows else None

    def export_rows(
        self,
        conn: sqlite3.Connection,
        *,
        since: str | None = None,
        platform: str | None = None,
        chat_id: str | None = None,
    ) -> Iterator[tuple[Any, ...]]:
        """The export's columns (storage.csv_io.EXPORT_COLUMNS) as tuples, oldest first.

        Tags are joined and `requested_by` is labelled inside SQLite: 100,000 rows stream
        out in about a second without building a dict per row.
        """
        clauses, params = ["status in ('complete', 'partial')"], []
        for column, value in (
            ("created_at >=", since),
            ("platform =", platform),
            ("chat_id =", chat_id),
        ):
            if value is not None:
                clauses.append(f"{column} ?")
                params.append(value)
        sql = f"""
            select title, description,
                (select group_concat(value, ', ') from json_each(batches.metatags)),
                prompt, created_at, provider, model,
                case when platform is null or platform = 'cli' then coalesce(platform, '')
                     else platform || ':' || coalesce(user_name, '') || ' ('
                          || coalesce(user_id, '') || ')' end,
                folder
            from batches where {" and ".join(clauses)} order by created_at, rowid"""
        cursor = conn.execute(sql, params)
        while rows := cursor.fetchmany(2000):
            yield from rows

    def batches_of_job(self, job_id: str) -> list[dict[str, Any]]:
        """Batches a job already archived (complete or partial), oldest first."""
        sql = (
            "select * from batches where job_id = ? and status in ('complete', 'partial') "
            "order by created_at, rowid"
        )
        return list(self.db.query(sql, [job_id]))

    def fail_rendering_batches(self, job_id: str, reason: str) -> list[str]:
        """Batches a job left 'rendering' (killed or cancelled) become failed; returns ids."""
        ids = [
            row["id"]
            for row in self.db.query(
                "select id from batches where job_id = ? and status = 'rendering'", [job_id]
            )
        ]
        if ids:
            with writing(self.db):
                self.db.execute(
                    "update batches set status = 'failed', error = ? "
                    "where job_id = ? and status = 'rendering'",
                    [reason, job_id],
                )
        return ids

    def mark_deleted(self, batch_id: str, by: str | None) -> None:
        """The chat post was deleted; the archive keeps the files and says who deleted it."""
        with writing(self.db):
            self.db.execute(
                "update batches set deleted_at = ?, deleted_by = ? where id = ?",
                [iso(utc_now()), by, batch_id],
            )

    # ---------------------------------------------------------------- prompts

    def record_prompts(self, rows: list[dict[str, Any]]) -> None:
        with writing(self.db):
            self.db["prompts"].insert_all(rows)


def tags_json(tags: list[str]) -> str:
    return json.dumps(tags, ensure_ascii=False)
