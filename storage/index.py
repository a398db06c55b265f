"""The index of batches and prompt lists: SQLite (sqlite-utils, migrating on open) by default,
or PostgreSQL (storage.opening), both behind the SQL seam of storage.sql."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from imagebot.storage.schema import check_known, migrations
from imagebot.storage.sql import Sql, SqliteSql
from imagebot.storage.transactions import writing


def insert_row(db: Sql, table: str, row: dict[str, Any]) -> None:
    """One row in its own transaction (see Sql.insert)."""
    db.insert(table, row)


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """ISO 8601 UTC with a Z, to the second."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


BUSY_TIMEOUT = 30.0  # seconds one attempt waits for another writer (storage.transactions retries)


class BadIndex(Exception):
    """The index file cannot be used (not a database, read-only, ...); it was left untouched."""


class Index:
    """Everything the bot must remember: one SQLite file, or a PostgreSQL database (`sql`)."""

    def __init__(self, path: Path | str = ":memory:", *, sql: Sql | None = None):
        self.path = Path(path)
        if sql is not None:
            self.db = sql
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT, check_same_thread=False)
        except (sqlite3.DatabaseError, OSError) as exc:
            raise _bad_index(self.path, exc) from None
        database = Database(conn)
        try:
            database.execute("PRAGMA journal_mode=WAL")
            database.execute("PRAGMA synchronous=NORMAL")
            with writing(database):  # processes opening a new archive at once migrate in turn
                check_known(database, self.path)
                migrations.apply(database)
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.DatabaseError | OSError):
                raise _bad_index(self.path, exc) from None
            raise
        self.db = SqliteSql(database, str(self.path))

    def close(self) -> None:
        self.db.close()

    def reader(self) -> AbstractContextManager[Sql]:
        """A connection of its own, for long reads in a worker thread (exports), so the
        shared connection stays the loop's."""
        return self.db.reader()

    # ---------------------------------------------------------------- batches

    def start_batch(self, row: dict[str, Any]) -> None:
        """Record a batch before rendering, so a crash leaves it marked, never unknown."""
        insert_row(self.db, "batches", {**row, "status": "rendering", "image_count": 0})

    def finish_batch(self, batch_id: str, *, status: str, error: str | None, **fields: Any) -> None:
        """Mark a batch complete, partial or failed, with what it became (folder, count...)."""
        values = {"status": status, "error": error, **fields}
        assignments = ", ".join(f"{column} = ?" for column in values)
        with self.db.writing():
            self.db.execute(
                f"update batches set {assignments} where id = ?", [*values.values(), batch_id]
            )

    def get_batch(self, batch_id: str) -> dict[str, Any] | None:
        rows = list(self.db.query("select * from batches where id = ?", [batch_id]))
        return rows[0] if rows else None

    def export_rows(
        self,
        conn: Sql,
        *,
        since: str | None = None,
        platform: str | None = None,
        chat_id: str | None = None,
    ) -> Iterator[tuple[Any, ...]]:
        """The export's columns (storage.csv_io.EXPORT_COLUMNS) as tuples, oldest first.

        `conn` is a reader (see reader()). Tags are joined and `requested_by` is labelled
        inside the database: 100,000 rows stream out in about a second without a dict per row.
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
            select title, description, {conn.tags_joined("batches.metatags")},
                prompt, created_at, provider, model,
                case when platform is null or platform = 'cli' then coalesce(platform, '')
                     else platform || ':' || coalesce(user_name, '') || ' ('
                          || coalesce(user_id, '') || ')' end,
                folder
            from batches where {" and ".join(clauses)} order by created_at, rowid"""
        yield from conn.stream(sql, params)

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
            with self.db.writing():
                self.db.execute(
                    "update batches set status = 'failed', error = ? "
                    "where job_id = ? and status = 'rendering'",
                    [reason, job_id],
                )
        return ids

    def mark_deleted(self, batch_id: str, by: str | None) -> None:
        """The chat post was deleted; the archive keeps the files and says who deleted it."""
        with self.db.writing():
            self.db.execute(
                "update batches set deleted_at = ?, deleted_by = ? where id = ?",
                [iso(utc_now()), by, batch_id],
            )

    # ---------------------------------------------------------------- prompts

    def record_prompts(self, rows: list[dict[str, Any]]) -> None:
        self.db.insert_all("prompts", rows)


def _bad_index(path: Path, exc: BaseException) -> BadIndex:
    if isinstance(exc, OSError):
        return BadIndex(
            f"the index {path} cannot be created ({exc.strerror or exc}); "
            "check IMAGEBOT_DB and IMAGEBOT_OUTPUT_DIR"
        )
    # Never "repair" a file we cannot read: it may be someone's data.
    return BadIndex(
        f"the index {path} cannot be used ({exc}); it was left untouched: move it "
        "aside, or point IMAGEBOT_DB at another file"
    )


def tags_json(tags: list[str]) -> str:
    return json.dumps(tags, ensure_ascii=False)
