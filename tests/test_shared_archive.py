"""Many processes share one archive (SPEC §6): none loses work to a locked index, a batch of a
process that is gone is marked failed at the next start, and a late index write is retried."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from imagebot.bot.cli import main
from imagebot.storage import index as index_module
from imagebot.storage import transactions
from imagebot.storage.archive import STAGING
from imagebot.storage.index import Index
from imagebot.storage.owners import ProcessOwner

ROOT = Path(__file__).resolve().parent.parent


def _env(output: Path) -> dict[str, str]:
    return {**os.environ, "IMAGEBOT_OUTPUT_DIR": str(output), "PYTHONPATH": str(ROOT.parent)}


@pytest.mark.slow
def test_parallel_prompts_runs_all_save_their_specs(tmp_path: Path) -> None:
    output = tmp_path / "output"
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "imagebot", "prompts", "40", "--seed", str(n)],
            env=_env(output),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(6)
    ]
    results = [(run.wait(120), *run.communicate()) for run in runs]
    assert [status for status, _, _ in results] == [0] * 6, [err for _, _, err in results]
    assert not any("Traceback" in err for _, _, err in results)
    with sqlite3.connect(output / "archive.db") as conn:
        assert conn.execute("select count(*) from prompts").fetchone() == (240,)
    rows = (output / "batch_prompts.csv").read_text("utf-8").splitlines()
    assert len(rows) == 1 + 240


def _rendering_row(index: Index, batch_id: str, owner: str | None) -> None:
    index.start_batch(
        {
            "id": batch_id,
            "created_at": "2026-01-01T00:00:00Z",
            "title": "Half done",
            "provider": "local",
            "status": "rendering",
            "owner": owner,
        }
    )


def test_a_batch_of_an_ended_process_is_failed_and_its_staging_removed_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "output"
    output.mkdir()
    index = Index(output / "archive.db")
    alive = ProcessOwner(output)  # a process still rendering: its batch is left alone
    _rendering_row(index, "dead", "123-gone")
    _rendering_row(index, "living", alive.token)
    for batch_id in ("dead", "living"):
        (output / STAGING / batch_id).mkdir(parents=True)
        (output / STAGING / batch_id / "1.png.tmp").write_bytes(b"partial")
    index.close()

    monkeypatch.setenv("IMAGEBOT_OUTPUT_DIR", str(output))
    assert main(["generate", "1", "64x64"]) == 0  # any start sweeps
    with sqlite3.connect(output / "archive.db") as conn:
        query = "select id, status || ':' || coalesce(error, '') from batches where title = ?"
        rows = dict(conn.execute(query, ["Half done"]))
    assert rows == {"dead": "failed:interrupted: its process ended", "living": "rendering:"}
    assert sorted(p.name for p in (output / STAGING).iterdir()) == ["living"]
    alive.release()
    capsys.readouterr()


@pytest.mark.slow
def test_ctrl_c_during_a_batch_marks_it_failed_and_exits_130(tmp_path: Path) -> None:
    output = tmp_path / "output"
    run = subprocess.Popen(
        [sys.executable, "-m", "imagebot", "generate", "8", "2048x2048", "--provider", "local"],
        env=_env(output),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A shell's background job starts with SIGINT ignored, and Python keeps it ignored:
        # give the child the default a terminal's Ctrl-C meets.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    while not _status(output / "archive.db") == "rendering":
        assert run.poll() is None and time.monotonic() < deadline, run.communicate()
        time.sleep(0.05)
    run.send_signal(signal.SIGINT)
    assert run.wait(60) == 130, run.communicate()
    assert _status(output / "archive.db") == "failed"
    assert [p.name for p in (output / STAGING).glob("*")] == []
    assert "Traceback" not in run.communicate()[1]


def _status(db: Path) -> str | None:
    if not db.exists():
        return None
    with sqlite3.connect(db, timeout=5) as conn:
        try:
            row = conn.execute("select status from batches").fetchone()
        except sqlite3.OperationalError:
            return None
    return row[0] if row else None


def test_a_writer_holding_the_index_past_the_busy_timeout_delays_but_never_hides_a_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IMAGEBOT_OUTPUT_DIR", str(tmp_path / "output"))
    monkeypatch.setattr(index_module, "BUSY_TIMEOUT", 0.1)
    monkeypatch.setattr(transactions, "PATIENCE", 30.0)
    assert main(["generate", "1", "64x64"]) == 0  # the index exists
    capsys.readouterr()

    holder = sqlite3.connect(
        tmp_path / "output" / "archive.db", isolation_level=None, check_same_thread=False
    )
    holder.execute("BEGIN EXCLUSIVE")
    released = threading.Timer(1.5, lambda: holder.execute("COMMIT"))
    released.start()  # far longer than the busy timeout of each attempt
    try:
        status = main(["generate", "1", "64x64"])
    finally:
        released.join()
        holder.close()
    out, err = capsys.readouterr()
    assert status == 0, err
    with sqlite3.connect(tmp_path / "output" / "archive.db") as conn:
        rows = conn.execute("select status, folder from batches order by rowid").fetchall()
    assert [s for s, _ in rows] == ["complete", "complete"]
    assert rows[1][1] in out and Path(rows[1][1]).is_dir()
    assert "Traceback" not in err
