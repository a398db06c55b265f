"""The SQL seam every store writes through: one interface, a SQLite and a PostgreSQL dialect.

Stores write portable SQL with `?` placeholders; the few things the dialects spell
differently (tags joined from their JSON list, full-text search, upserts) are methods here.
SQLite runs over sqlite-utils as it always did (BEGIN IMMEDIATE with patience, WAL);
PostgreSQL runs over one psycopg 3 connection shared by the loop and worker threads.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from functools import lru_cache
from typing import Any

from sqlite_utils import Database

from imagebot.storage.transactions import PATIENCE, writing

Params = Sequence[Any]
STREAM_CHUNK = 2000  # rows fetched at a time by long reads (exports)
# What the gallery searches: SQLite indexes these columns in batches_fts (m010), PostgreSQL in
# an expression GIN index over the same text (p001), so neither needs a column of its own.
PG_SEARCH_TEXT = (
    "to_tsvector('simple', coalesce(b.title, '') || ' ' || coalesce(b.description, '') "
    "|| ' ' || coalesce(b.metatags, ''))"
)


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

    def search(self, words: list[str]) -> tuple[str, str, str]:
        """(join, where, order) SQL for batches `b` matching every word, the last as a
        prefix, newest first; the where clause takes one parameter, the query text."""
        raise NotImplementedError

    def search_query(self, words: list[str]) -> str:
        """The parameter of `search`'s where clause."""
        raise NotImplementedError

    def insert(self, table: str, row: dict[str, Any]) -> None:
        """One row in its own transaction, as plain SQL (no table inspection: it runs for
        every job and batch of a busy bot)."""
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        with self.writing():
            self.execute(f"insert into {table} ({columns}) values ({marks})", list(row.values()))

    def insert_all(self, table: str, rows: list[dict[str, Any]]) -> None:
        """Many rows in one transaction; rows may carry different columns."""
        with self.writing():
            for row in rows:
                self.insert(table, row)

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

    def search(self, words: list[str]) -> tuple[str, str, str]:
        # Driven by the FTS index in rowid order (rowid grows with created_at): the newest
        # matches come first without sorting every match.
        return ("join batches_fts f on f.rowid = b.rowid", "batches_fts match ?", "f.rowid desc")

    def search_query(self, words: list[str]) -> str:
        # Every word quoted (never an FTS5 syntax error), all required, the last a prefix.
        quoted = [f'"{word}"' for word in words]
        quoted[-1] += "*"
        return " ".join(quoted)


@lru_cache(maxsize=512)
def to_pyformat(sql: str) -> str:
    """`?` placeholders as psycopg's `%s` (and a literal `%` doubled), outside quotes."""
    out, quoted = [], False
    for char in sql:
        if char == "'":
            quoted = not quoted
        if char == "%":
            out.append("%%")
        elif char == "?" and not quoted:
            out.append("%s")
        else:
            out.append(char)
    return "".join(out)


def _pg_args(sql: str, params: Params) -> tuple[Any, ...]:
    # Without parameters psycopg sends the text as it is (several statements may run).
    return (to_pyformat(sql), list(params)) if params else (sql,)


class PostgresSql(Sql):
    """The shared index of many processes: one psycopg connection, in autocommit outside
    `writing()`. A lock serialises the loop thread and worker threads on it, so nobody's
    statement lands inside another thread's transaction."""

    dialect = "postgresql"

    def __init__(self, url: str):
        self.url = url
        self.conn = self._connect()
        self._lock = threading.RLock()
        self._depth = 0  # writing() blocks open: never reconnect inside a transaction

    def _connect(self) -> Any:
        import psycopg

        return psycopg.connect(self.url, autocommit=True, connect_timeout=10)

    def _live(self) -> Any:
        """The connection, made again when the last one broke (a server restart, a killed
        backend): the statement that met the break failed, the next ones work."""
        if self.conn.broken and self._depth == 0:
            self.conn = self._connect()
        return self.conn

    def query(self, sql: str, params: Params = ()) -> Iterable[dict[str, Any]]:
        from psycopg.rows import dict_row

        with self._lock, self._live().cursor(row_factory=dict_row) as cursor:
            cursor.execute(*_pg_args(sql, params))
            return cursor.fetchall()

    def execute(self, sql: str, params: Params = ()) -> Any:
        with self._lock:
            return self._live().execute(*_pg_args(sql, params))

    @contextmanager
    def writing(self, patience: float = PATIENCE) -> Iterator[Sql]:
        # Row locks make PostgreSQL writers wait for each other; patience is SQLite's matter.
        with self._lock, self._live().transaction():
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1

    def stream(self, sql: str, params: Params = ()) -> Iterator[tuple[Any, ...]]:
        # A server-side cursor: a large export never sits whole in memory.
        with self._lock, self.conn.transaction(), self.conn.cursor(name="imagebot_stream") as cur:
            cur.itersize = STREAM_CHUNK
            cur.execute(*_pg_args(sql, params))
            yield from cur

    @contextmanager
    def reader(self) -> Iterator[Sql]:
        other = PostgresSql(self.url)
        try:
            yield other
        finally:
            other.close()

    def close(self) -> None:
        self.conn.close()

    def tags_joined(self, column: str) -> str:
        return f"(select string_agg(value, ', ') from json_array_elements_text({column}::json))"

    def search(self, words: list[str]) -> tuple[str, str, str]:
        return ("", f"{PG_SEARCH_TEXT} @@ to_tsquery('simple', ?)", "b.rowid desc")

    def search_query(self, words: list[str]) -> str:
        # Words are \w+ only, so quoting them cannot break the tsquery syntax.
        quoted = [f"'{word}'" for word in words]
        quoted[-1] += ":*"
        return " & ".join(quoted)


def scrub(message: str, url: str) -> str:
    """A driver's message without the URL or its password (SPEC §2: secrets never shown)."""
    message = message.replace(url, "IMAGEBOT_DATABASE_URL")
    password = re.match(r"^[^:]+://[^:/@]*:([^@]*)@", url)
    if password and password.group(1):
        message = message.replace(password.group(1), "***")
    return " ".join(message.split())
