"""`imagebot migrate`, and the one-line refusals of a schema this imagebot does not know, on a
real PostgreSQL server and on the SQLite file; the database URL never shows."""

from __future__ import annotations

import csv
import io
import socket
import threading
from pathlib import Path

import psycopg
import pytest

from imagebot.bot.cli import main
from imagebot.storage import pg_schema
from imagebot.storage.index import Index
from imagebot.storage.opening import migrate_index
from imagebot.storage.schema import KNOWN

PASSWORD = "pw-d0-not-print-4471"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again: nothing listens there


def with_password(url: str) -> str:
    """The test server trusts loopback, so any password is accepted: it must never show."""
    return url.replace("postgres@", f"postgres:{PASSWORD}@", 1)


@pytest.fixture
def pg_url(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    url = with_password(postgres_url)
    monkeypatch.setenv("IMAGEBOT_DATABASE_URL", url)
    return postgres_url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    assert PASSWORD not in out + err
    return status, out, err


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


def schema_rows(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        found = conn.execute("select to_regclass('imagebot_schema') is not null").fetchone()
        if not found[0]:
            return []
        return [row[0] for row in conn.execute("select name from imagebot_schema order by seq")]


def batch_folders(output: Path) -> list[Path]:
    if not output.exists():
        return []
    return [p for p in output.iterdir() if p.is_dir() and not p.name.startswith(".")]


def test_migrate_prepares_a_new_postgresql_database_once(
    pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(capsys, "migrate")
    assert status == 0, err
    assert one_line(out) == (
        "the PostgreSQL index: applied 1 migration (p001_index .. p001_index), now at p001_index"
    )
    status, out, _ = run(capsys, "migrate")
    assert status == 0 and one_line(out) == "the PostgreSQL index is up to date (schema p001_index)"
    assert schema_rows(pg_url) == ["p001_index"]


def test_after_migrate_batches_are_archived_and_exported_from_postgresql(
    pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "migrate")[0] == 0
    status, out, err = run(capsys, "generate", "2", "64x64", "--theme", "a lighthouse")
    assert status == 0, err
    [folder] = batch_folders(tmp_path / "output")
    assert one_line(out) == str(folder)
    status, out, err = run(capsys, "export")
    assert status == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["folder"], r["provider"]) for r in rows] == [(str(folder), "local")]
    assert not (tmp_path / "output" / "archive.db").exists()  # nothing went to SQLite


@pytest.mark.parametrize(
    "argv", [["export"], ["generate", "1", "64x64"], ["web", "--port", str(free_port())]]
)
def test_every_command_refuses_a_database_never_migrated(
    pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    status, out, err = run(capsys, *argv)
    assert status == 1 and out == ""
    assert one_line(err) == (
        "imagebot: the PostgreSQL index has no imagebot schema yet, this imagebot needs "
        "p001_index: run imagebot migrate"
    )
    assert schema_rows(pg_url) == [] and batch_folders(tmp_path / "output") == []


def test_a_schema_migrated_by_a_newer_imagebot_is_refused_even_by_migrate(
    pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "migrate")[0] == 0
    with psycopg.connect(pg_url) as conn:
        conn.execute("insert into imagebot_schema values (2, 'p002_future', 'later')")
    for argv in (["export"], ["migrate"]):
        status, out, err = run(capsys, *argv)
        assert status == 1 and out == ""
        assert one_line(err) == (
            "imagebot: this database was migrated by a newer imagebot (it has p002_future, "
            "this imagebot knows up to p001_index): upgrade imagebot, or set "
            "IMAGEBOT_DATABASE_URL to another database"
        )
    assert schema_rows(pg_url) == ["p001_index", "p002_future"]


def test_an_unreachable_database_is_one_line_without_the_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"postgresql://imagebot:{PASSWORD}@127.0.0.1:{free_port()}/imagebot"
    monkeypatch.setenv("IMAGEBOT_DATABASE_URL", url)
    for argv in (["migrate"], ["export"]):
        status, out, err = run(capsys, *argv)
        line = one_line(err)
        assert status == 2 and out == ""
        assert line.startswith(
            "imagebot: configuration error: cannot connect to the PostgreSQL index in "
            "IMAGEBOT_DATABASE_URL ("
        )
        assert line.endswith("check the URL and that the server runs") and url not in line


def test_sqlite_migrates_on_open_and_migrate_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "output" / "archive.db"
    status, out, _ = run(capsys, "migrate")
    assert status == 0 and one_line(out) == (
        f"the SQLite index {path}: applied {len(KNOWN)} migrations "
        f"({KNOWN[0]} .. {KNOWN[-1]}), now at {KNOWN[-1]}"
    )
    status, out, _ = run(capsys, "migrate")
    assert one_line(out) == f"the SQLite index {path} is up to date (schema {KNOWN[-1]})"
    other = tmp_path / "other.db"
    index = Index(other)  # any other command migrates a new file by itself, as before
    assert [r["name"] for r in index.db.query("select name from _sqlite_migrations")] == KNOWN
    index.close()


@pytest.mark.parametrize("argv", [["export"], ["generate", "1", "64x64"], ["migrate"]])
def test_a_sqlite_index_from_a_newer_imagebot_is_refused_and_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    path = tmp_path / "output" / "archive.db"
    index = Index(path)
    index.db.execute(
        "insert into _sqlite_migrations (migration_set, name, applied_at) "
        "values ('imagebot', 'm099_future', 'later')"
    )
    index.db.conn.commit()
    index.close()
    status, out, err = run(capsys, *argv)
    assert status == 1 and out == ""
    assert one_line(err) == (
        f"imagebot: the index {path} was migrated by a newer imagebot (it has m099_future, "
        f"this imagebot knows up to {KNOWN[-1]}): upgrade imagebot, or point IMAGEBOT_DB at "
        "another file"
    )
    assert batch_folders(tmp_path / "output") == []


def test_an_upgrade_is_refused_until_migrate_applies_just_what_is_new(
    pg_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "migrate")[0] == 0
    step = ("p002_batch_notes", "alter table batches add column notes text")
    monkeypatch.setattr(pg_schema, "MIGRATIONS", [*pg_schema.MIGRATIONS, step])
    monkeypatch.setattr(pg_schema, "KNOWN", [*pg_schema.KNOWN, step[0]])
    status, _, err = run(capsys, "export")
    assert status == 1 and one_line(err) == (
        "imagebot: the PostgreSQL index is at p001_index, this imagebot needs p002_batch_notes: "
        "run imagebot migrate"
    )
    status, out, _ = run(capsys, "migrate")
    assert status == 0 and one_line(out) == (
        "the PostgreSQL index: applied 1 migration (p002_batch_notes .. p002_batch_notes), "
        "now at p002_batch_notes"
    )
    assert schema_rows(pg_url) == ["p001_index", "p002_batch_notes"]
    assert run(capsys, "export")[0] == 0


def test_two_migrates_at_once_apply_the_schema_once(postgres_url: str, tmp_path: Path) -> None:
    start, lines = threading.Barrier(2), []

    def migrate() -> None:
        start.wait()
        lines.append(migrate_index(tmp_path / "unused.db", postgres_url))

    threads = [threading.Thread(target=migrate) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(line.split(":")[0] for line in lines) == [
        "the PostgreSQL index",
        "the PostgreSQL index is up to date (schema p001_index)",
    ]
    assert schema_rows(postgres_url) == ["p001_index"]
