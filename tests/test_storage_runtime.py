"""The durable runtime over each index: the same bot, on the SQLite file and on PostgreSQL
(migrated first), takes jobs, answers them once, and resumes the interrupted after a restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from imagebot.storage.opening import migrate_index
from tests.recording_port import RecordingPort, StubControls, start_harness, until


@pytest.fixture(params=["sqlite", "postgresql"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    if request.param == "sqlite":
        return {}
    url = request.getfixturevalue("postgres_url")
    migrate_index(tmp_path / "unused.db", url)
    return {"IMAGEBOT_DATABASE_URL": url}


async def test_one_running_request_per_user_and_each_answered_once(
    tmp_path: Path, env: dict[str, str], stub: StubControls
) -> None:
    stub.gate = asyncio.Event()
    bot = await start_harness(tmp_path / "output", env, workers=8)
    try:
        first = await bot.say("generate", {"count": 1, "size": "64x64"})
        second = await bot.say("generate", {"count": 1, "size": "64x64"})
        assert [job["status"] for job in bot.jobs()] == ["running", "accepted"]
        assert "number 1 in the queue" in second.of("progress")[0].text
        stub.gate.set()
        await bot.runtime.drain()
        assert [(j["status"], j["answered"]) for j in bot.jobs()] == [("done", 1), ("done", 1)]
        assert [b["status"] for b in bot.batches()] == ["complete", "complete"]
    finally:
        await bot.close()
    assert len(first.posts) == 1 and len(second.posts) == 1
    assert (tmp_path / "output" / "archive.db").exists() == (not env)  # which index was used


async def test_a_job_interrupted_by_a_stop_is_answered_once_after_the_restart(
    tmp_path: Path, env: dict[str, str], stub: StubControls
) -> None:
    stub.gate = asyncio.Event()
    bot = await start_harness(tmp_path / "output", env)
    await bot.say("generate", {"count": 2, "size": "64x64"})
    await until(lambda: stub.started)
    await bot.close()

    stub.gate = None
    rebuilt: list[RecordingPort] = []

    def factory(reply: dict) -> RecordingPort:
        rebuilt.append(RecordingPort(reply=reply))
        return rebuilt[-1]

    again = await start_harness(tmp_path / "output", env, factories={"discord": factory})
    try:
        await again.runtime.drain()
        [port] = rebuilt
        [post] = port.posts
        assert len(post.images) == 2
        assert [b["status"] for b in again.batches()] == ["failed", "complete"]
        assert [(j["status"], j["answered"]) for j in again.jobs()] == [("done", 1)]
    finally:
        await again.close()
