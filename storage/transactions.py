"""Write transactions that take SQLite's write lock up front and wait out contention.

A deferred transaction that reads and then writes cannot upgrade its lock while another
connection holds it: SQLite answers "database is locked" at once, whatever the busy timeout.
`BEGIN IMMEDIATE` asks for the write lock first, so the busy timeout applies; and when a
writer holds the lock longer than that, the attempt is repeated until `patience` runs out.
Any number of CLI processes and a running bot can share one archive this way.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

DB = TypeVar("DB")  # a sqlite-utils Database, or storage.sql's SqliteSql: anything with .conn
PATIENCE = 600.0  # seconds a write waits for the lock in all (each try waits the busy timeout)


def _locked(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


@contextmanager
def writing(db: DB, patience: float = PATIENCE) -> Iterator[DB]:
    """One write transaction (a savepoint when already inside one)."""
    if getattr(db, "dialect", "sqlite") != "sqlite":  # storage.sql's PostgresSql
        with db.writing(patience):  # type: ignore[attr-defined]
            yield db
        return
    conn: Any = db.conn
    if conn.in_transaction:
        savepoint = f"imagebot_{secrets.token_hex(8)}"
        conn.execute(f"SAVEPOINT {savepoint}")
        try:
            yield db
        except BaseException:
            if conn.in_transaction:
                conn.execute(f"ROLLBACK TO SAVEPOINT {savepoint}")
                conn.execute(f"RELEASE SAVEPOINT {savepoint}")
            raise
        conn.execute(f"RELEASE SAVEPOINT {savepoint}")
        return
    deadline = time.monotonic() + patience
    delay = 0.05
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            break
        except sqlite3.OperationalError as exc:
            if not _locked(exc) or time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)  # the busy timeout already waited; a writer holds on for long
            delay = min(delay * 2, 2.0)
    try:
        yield db
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
