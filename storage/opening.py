"""Which index a process opens (SQLite file, or PostgreSQL when a URL is set), and `migrate`.

SQLite migrates on open, as it always did (an embedded file has one user: its program).
PostgreSQL is shared by many processes of possibly different versions, so it is migrated
only by `imagebot migrate`; every other process checks the schema first and refuses, in
one line, one it does not know.
"""

from __future__ import annotations

from pathlib import Path

from imagebot.storage.index import BadIndex, Index
from imagebot.storage.postgres import PostgresSql, scrub


def connect_postgres(url: str) -> PostgresSql:
    """The PostgreSQL index's connection; BadIndex (without the URL) when it cannot be had."""
    try:
        import psycopg
    except ImportError:
        raise BadIndex(
            "IMAGEBOT_DATABASE_URL needs psycopg: pip install 'imagebot[postgres]'"
        ) from None
    try:
        return PostgresSql(url)
    except psycopg.Error as exc:
        raise BadIndex(
            f"cannot connect to the PostgreSQL index in IMAGEBOT_DATABASE_URL "
            f"({scrub(str(exc), url)}); check the URL and that the server runs"
        ) from None


def open_index(db_path: Path | str, database_url: str | None = None) -> Index:
    """The PostgreSQL index when `database_url` is set (its schema checked: SchemaError
    unless it is exactly this imagebot's), else the SQLite file at `db_path`."""
    if database_url is None:
        return Index(db_path)
    from imagebot.storage import pg_schema

    sql = connect_postgres(database_url)
    try:
        pg_schema.check(sql)
    except BaseException:
        sql.close()
        raise
    return Index(sql=sql)


def migrate_index(db_path: Path | str, database_url: str | None = None) -> str:
    """Apply the pending migrations to the configured index; one line saying what was done."""
    if database_url is not None:
        from imagebot.storage import pg_schema

        sql = connect_postgres(database_url)
        try:
            names = pg_schema.migrate(sql)
        finally:
            sql.close()
        return _done("the PostgreSQL index", names, pg_schema.KNOWN[-1])
    from sqlite_utils import Database

    from imagebot.storage.schema import KNOWN, migrations

    path = Path(db_path)
    if path.is_file():
        probe = Database(path)  # what is pending, before Index applies it
        try:
            pending = [m.name for m in migrations.pending(probe)]
        except Exception:
            pending = []  # Index below says what is wrong with the file, in one line
        finally:
            probe.close()
    else:
        pending = list(KNOWN)
    Index(path).close()
    return _done(f"the SQLite index {path}", pending, KNOWN[-1])


def _done(what: str, names: list[str], latest: str) -> str:
    if not names:
        return f"{what} is up to date (schema {latest})"
    plural = "migration" if len(names) == 1 else "migrations"
    return f"{what}: applied {len(names)} {plural} ({names[0]} .. {names[-1]}), now at {latest}"
