"""The SQL seam every store writes through: one interface, and its SQLite dialect.

Stores write portable SQL with `?` placeholders; the few things the dialects spell
differently (tags joined from their JSON list, full-text search) are methods here, and the
upsert both speak. SQLite runs over sqlite-utils as it always did (BEGIN IMMEDIATE with
patience, WAL); PostgreSQL is storage.postgres.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, NamedTuple

from sqlite_utils import Database

from imagebot.storage.transactions import PATIENCE, writing

Params = Sequence[Any]
STREAM_CHUNK = 2000  # rows fetched at a time by long reads (exports)


class Search(NamedTuple):
    """A full-text search as SQL pieces: `where` takes one parameter, `term`."""

    join: str
    where: str
    term: str
    order: str


class SchemaError(Exception):
    """The index's schema is not the one this imagebot knows (older or newer): exit 1."""


class Sql:
    """What a store may ask of its database; see SqliteSql and PostgresSql."""

    dialect = ""

    def query(self, sql: str, params: Params = ()) -> Iterable[dict[str, Any]]:
        """Rows as dicts."""
        raise NotImplementedError

    def execute(self, sql: str, params: Params = ()) -> Any:
        """Run one statement; the cursor answers `rowcount` and `fetchall()` (tuples)."""
        raise NotImplementedError

    def writing(self, patience: float = PATIENCE) -> AbstractContextManager[Sql]:
        """One write transaction (a savepoint inside another)."""
        raise NotImplementedError

    def stream(self, sql: str, params: Params = ()) -> Iterator[tuple[Any, ...]]:
        """Rows as tuples, fetched a chunk at a time (for long reads on a reader)."""
        raise NotImplementedError

    def reader(self) -> AbstractContextManager[Sql]:
        """A connection of its own for long reads in a worker thread (exports)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def tags_joined(self, column: str) -> str:
        """SQL for a JSON list of tags as one `a, b` string."""
        raise NotImplementedError

    def search(self, words: list[str]) -> Search:
        """SQL for the batches `b` holding every word (the last also as a prefix: search as
        you type) in their title, description or tags, newest first."""
        raise NotImplementedError

    def insert(self, table: str, row: dict[str, Any]) -> None:
        """One row in its own transaction, as plain SQL (no table inspection: it runs for
        every job and batch of a busy bot)."""
        self.insert_all(table, [row])

    def insert_all(self, table: str, rows: list[dict[str, Any]]) -> None:
        """Rows in one transaction; rows may carry different columns."""
        with self.writing():
            for row in rows:
                marks = ", ".join("?" for _ in row)
                sql = f"insert into {table} ({', '.join(row)}) values ({marks})"
                self.execute(sql, list(row.values()))

    def upsert(self, table: str, row: dict[str, Any], pk: str = "id") -> None:
        """Insert the row, or update the given columns of the one with its key (both
        dialects speak `on conflict ... do update`)."""
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        updates = ", ".join(f"{c} = excluded.{c}" for c in row if c != pk)
        action = f"do update set {updates}" if updates else "do nothing"
        sql = f"insert into {table} ({columns}) values ({marks}) on conflict ({pk}) {action}"
        with self.writing():
            self.execute(sql, list(row.values()))


class SqliteSql(Sql):
    """The embedded default: a sqlite-utils Database on one file (or :memory:)."""

    dialect = "sqlite"

    def __init__(self, database: Database, path: str | None = None):
        self.database = database
        self.path = path

    @property
    def conn(self) -> Any:
        """The sqlite3 connection (storage.transactions and older callers use it)."""
        return self.database.conn

    def query(self, sql: str, params: Params = ()) -> Iterable[dict[str, Any]]:
        return self.database.query(sql, params)

    def execute(self, sql: str, params: Params = ()) -> Any:
        return self.database.execute(sql, params)

    def writing(self, patience: float = PATIENCE) -> AbstractContextManager[Sql]:
        return writing(self, patience)

    def stream(self, sql: str, params: Params = ()) -> Iterator[tuple[Any, ...]]:
        cursor = self.database.conn.execute(sql, params)
        while rows := cursor.fetchmany(STREAM_CHUNK):
            yield from rows

    @contextmanager
    def reader(self) -> Iterator[Sql]:
        # WAL lets a read-only connection read while the bot writes on the shared one.
        if self.path in (None, ":memory:"):
            yield self
            return
        import sqlite3

        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
        try:
            yield SqliteSql(Database(conn), self.path)
        finally:
            conn.close()

    def close(self) -> None:
        self.database.close()

    def tags_joined(self, column: str) -> str:
        return f"(select group_concat(value, ', ') from json_each({column}))"

    def search(self, words: list[str]) -> Search:
        # Every word quoted (never an FTS5 syntax error), all required, the last a prefix.
        # Driven by the FTS index in rowid order (rowid grows with created_at): the newest
        # matches come first without sorting every match.
        term = " ".join(f'"{word}"' for word in words) + "*"
        return Search("join batches_fts f on f.rowid = b.rowid", "batches_fts match ?", term,
                      "f.rowid desc")  # fmt: skip
