"""Every accepted request is answered once, even when the bot dies in between (SPEC §7)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from tests.fakes.webui_server import FakeWebUI
from tests.recording_port import Harness, RecordingPort, StubControls, start_harness

CHILD = Path(__file__).with_name("recovery_child.py")
ROOT = CHILD.parent.parent


class Rebuilt:
    """The port factory an adapter registers; remembers each port it built."""

    def __init__(self) -> None:
        self.ports: list[RecordingPort] = []

    def __call__(self, reply: dict) -> RecordingPort:
        self.ports.append(RecordingPort(reply=reply))
        return self.ports[-1]


async def crashed_after(tmp_path: Path, stub: StubControls, sql: str) -> tuple[Harness, str]:
    """Run one request to the end, then rewind its job row with `sql` as a kill would leave it."""
    bot = await start_harness(tmp_path / "output")
    first = await bot.say("generate", {"count": 2, "size": "64x64"})
    await bot.runtime.drain()
    await bot.close()
    bot.services.index.db.execute(sql)
    return bot, first.posts[0].batch_id if first.posts else ""


async def resume(tmp_path: Path) -> tuple[Harness, Rebuilt]:
    factory = Rebuilt()
    bot = await start_harness(tmp_path / "output", factories={"discord": factory})
    await bot.runtime.drain()
    await bot.close()
    return bot, factory


async def test_killed_after_archiving_posts_the_archived_batch_without_rendering(
    tmp_path: Path, stub: StubControls
) -> None:
    rewind = "update jobs set status='running', answered=0, result=null, finished_at=null"
    _, batch_id = await crashed_after(tmp_path, stub, rewind)
    renders = len(stub.renders)

    bot, factory = await resume(tmp_path)

    [port] = factory.ports
    assert [post.batch_id for post in port.posts] == [batch_id]
    assert len(port.posts[0].images) == 2 and port.posts[0].mention == "1"
    assert len(stub.renders) == renders  # nothing rendered twice
    assert [b["status"] for b in bot.batches()] == ["complete"]
    [job] = bot.jobs()
    assert (job["status"], job["answered"]) == ("done", 1)


async def test_killed_while_answering_answers_from_the_recorded_result(
    tmp_path: Path, stub: StubControls
) -> None:
    rewind = "update jobs set status='running', answered=0, finished_at=null"
    _, batch_id = await crashed_after(tmp_path, stub, rewind)
    renders = len(stub.renders)

    bot, factory = await resume(tmp_path)

    assert [post.batch_id for port in factory.ports for post in port.posts] == [batch_id]
    assert len(stub.renders) == renders


async def test_a_recorded_failure_is_told_again_not_retried(
    tmp_path: Path, stub: StubControls
) -> None:
    stub.fail_all = True
    rewind = "update jobs set status='running', answered=0, finished_at=null"
    await crashed_after(tmp_path, stub, rewind)
    renders = len(stub.renders)

    bot, factory = await resume(tmp_path)

    [port] = factory.ports
    assert len(port.texts) == 1 and "No image could be rendered" in port.texts[0]
    assert len(stub.renders) == renders


async def test_killed_mid_render_fails_the_half_batch_and_renders_once_more(
    tmp_path: Path, stub: StubControls
) -> None:
    stub.gate = asyncio.Event()
    bot = await start_harness(tmp_path / "output")
    await bot.say("generate", {"count": 2, "size": "64x64"})
    while not stub.started:
        await asyncio.sleep(0.005)
    await bot.close()
    [half] = bot.batches()
    staging = tmp_path / "output" / ".staging" / half["id"]
    staging.mkdir(parents=True)
    (staging / "1.png").write_bytes(b"half")
    bot.services.index.db.execute("update jobs set status = 'running'")
    stub.gate = None

    bot, factory = await resume(tmp_path)

    assert not staging.exists()
    assert [(b["status"], b["error"]) for b in bot.batches()] == [
        ("failed", "interrupted"),
        ("complete", None),
    ]
    assert len([p for port in factory.ports for p in port.posts]) == 1


# ------------------------------------------------------------------ a real kill -9


def _job_status(db: Path) -> str | None:
    if not db.exists():
        return None
    with sqlite3.connect(db, timeout=5) as conn:
        try:
            row = conn.execute("select status from jobs").fetchone()
        except sqlite3.OperationalError:  # the child is still creating the schema
            return None
    return row[0] if row else None


async def _run_child(mode: str, env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    stream = log.open("ab")
    return await asyncio.create_subprocess_exec(
        sys.executable, str(CHILD), mode, env=env, stdout=stream, stderr=stream, cwd=ROOT
    )


@pytest.mark.slow
async def test_sigkill_while_rendering_then_restart_answers_and_archives_once(
    tmp_path: Path,
) -> None:
    output, answers, log = tmp_path / "output", tmp_path / "answers.jsonl", tmp_path / "child.log"
    async with FakeWebUI(latency=1.0) as fake:
        env = {
            **os.environ,
            "IMAGEBOT_OUTPUT_DIR": str(output),
            "IMAGEBOT_PROMPT_SOURCE": "templates",
            "STABLE_DIFFUSION_URL": fake.url,
            "RECOVERY_ANSWERS": str(answers),
        }
        child = await _run_child("submit", env, log)

        async def rendering() -> None:
            while not (fake.txt2img_payloads and _job_status(output / "archive.db") == "running"):
                assert child.returncode is None, log.read_text()
                await asyncio.sleep(0.02)

        await asyncio.wait_for(rendering(), 60)
        os.kill(child.pid, signal.SIGKILL)
        assert await child.wait() == -signal.SIGKILL
        assert not answers.exists()  # killed before anything was answered

        fake.latency = 0.0
        again = await _run_child("resume", env, log)
        assert await asyncio.wait_for(again.wait(), 60) == 0, log.read_text()

    lines = [json.loads(line) for line in answers.read_text().splitlines()]
    assert [line["method"] for line in lines] == ["images"], lines
    assert lines[0]["pid"] == again.pid and len(lines[0]["images"]) == 2
    with sqlite3.connect(output / "archive.db") as conn:
        batches = conn.execute("select status, folder from batches order by rowid").fetchall()
        jobs = conn.execute("select status, answered, attempts from jobs").fetchall()
    complete = [folder for status, folder in batches if status == "complete"]
    assert len(complete) == 1 and [s for s, _ in batches].count("rendering") == 0
    assert jobs == [("done", 1, 2)]
    folders = [p for p in output.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert [str(p) for p in folders] == complete
    assert [p.name for p in (output / ".staging").glob("*")] == []
