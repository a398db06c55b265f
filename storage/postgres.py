"""The PostgreSQL dialect of the SQL seam (storage.sql): the index many processes share.

One psycopg 3 connection, in autocommit outside `writing()`; a lock serialises the loop
thread and worker threads on it, and long reads (exports) get a connection of their own.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from imagebot.storage.sql import Params, Search, Sql
from imagebot.storage.transactions import PATIENCE

STREAM_CHUNK = 2000  # rows a server-side cursor fetches at a time
# What the gallery searches: SQLite indexes these columns in batches_fts (m010), PostgreSQL in
# an expression GIN index over the same text (p001), so neither needs a column of its own.
PG_SEARCH_TEXT = (
    "to_tsvector('simple', coalesce(b.title, '') || ' ' || coalesce(b.description, '') "
    "|| ' ' || coalesce(b.metatags, ''))"
)


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
        conn = self._live()
        with self._lock, conn.transaction(), conn.cursor(name="imagebot_stream") as cur:
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

    def search(self, words: list[str]) -> Search:
        # Words are \w+ only, so quoting them cannot break the tsquery syntax; the GIN index
        # over the same expression (p001) finds the matches.
        term = " & ".join(f"'{word}'" for word in words) + ":*"
        return Search("", f"{PG_SEARCH_TEXT} @@ to_tsquery('simple', ?)", term, "b.rowid desc")


def scrub(message: str, url: str) -> str:
    """A driver's message without the URL or its password (SPEC §2: secrets never shown)."""
    message = message.replace(url, "IMAGEBOT_DATABASE_URL")
    password = re.match(r"^[^:]+://[^:/@]*:([^@]*)@", url)
    if password and password.group(1):
        message = message.replace(password.group(1), "***")
    return " ".join(message.split())
