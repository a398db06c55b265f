"""The job runtime: fairness, one request per user, provider caps, cancel, stop and resume."""

from __future__ import annotations

import asyncio
from pathlib import Path

from imagebot.commands.jobs import PromptsJob
from imagebot.commands.requester import Requester
from tests.recording_port import (
    Harness,
    RecordingPort,
    StubControls,
    start_harness,
    until,
)

SMALL = {"count": 1, "size": "64x64"}


def statuses(bot: Harness) -> list[str]:
    return [job["status"] for job in bot.jobs()]


async def test_round_robin_serves_other_users_before_a_floods_second_job(
    tmp_path: Path, stub: StubControls
) -> None:
    stub.gate = asyncio.Event()
    bot = await start_harness(tmp_path / "output", workers=1)
    journal: list[tuple[str, str]] = []
    ports = {}
    try:
        for name, user in [("A1", "a"), ("A2", "a"), ("A3", "a"), ("A4", "a"),
                           ("B1", "b"), ("C1", "c")]:  # fmt: skip
            ports[name] = RecordingPort(name=name, journal=journal)
            await bot.say("generate", SMALL, user=user, port=ports[name])
        # A's fourth is refused (three in the queue at most), and nothing is queued for it.
        assert "You already have 3 requests in the queue" in ports["A4"].of("text")[0].text
        assert bot.runtime.places(Requester("discord", "b")) == [(bot.jobs()[3]["id"], 1)]
        assert [p for _, p in bot.runtime.places(Requester("discord", "a"))] == [0, 3, 4]
        assert "number 1 in the queue" in ports["B1"].of("progress")[0].text
        assert "number 2 in the queue" in ports["C1"].of("progress")[0].text
        stub.gate.set()
        await bot.runtime.drain()
    finally:
        await bot.close()

    served = [name for name, method in journal if method == "images"]
    assert served == ["A1", "B1", "C1", "A2", "A3"]


async def test_one_running_request_per_user(tmp_path: Path, stub: StubControls) -> None:
    stub.gate = asyncio.Event()
    bot = await start_harness(tmp_path / "output", workers=8)
    try:
        first = await bot.say("generate", SMALL)
        second = await bot.say("generate", SMALL)
        assert statuses(bot) == ["running", "accepted"]
        assert "number 1 in the queue" in second.of("progress")[0].text
        queue = await bot.say("queue")
        assert queue.texts[0].splitlines()[1:] == [
            "• 1 image with local: being made now",
            "• 1 image with local: number 1 in the queue",
        ]
        stub.gate.set()
        await bot.runtime.drain()
    finally:
        await bot.close()
    assert len(first.posts) == 1 and len(second.posts) == 1
    assert statuses(bot) == ["done", "done"]


async def test_a_full_provider_does_not_hold_back_other_providers(
    tmp_path: Path, stub: StubControls
) -> None:
    stub.gate = asyncio.Event()
    env = {"IMAGEBOT_PROVIDER_CONCURRENCY": "1"}
    bot = await start_harness(tmp_path / "output", env, workers=4)
    try:
        await bot.say("generate", {**SMALL, "provider": "local"}, user="x")
        await bot.say("generate", {**SMALL, "provider": "local"}, user="y")
        horde = await bot.say("generate", {**SMALL, "provider": "horde"}, user="z")
        assert statuses(bot) == ["running", "accepted", "running"]
        assert horde.of("progress") == [] or "queue" not in horde.of("progress")[0].text
        stub.gate.set()
        await bot.runtime.drain()
    finally:
        await bot.close()
    assert statuses(bot) == ["done", "done", "done"]


async def test_requests_per_minute_cap_holds_jobs_until_the_minute_passes(
    tmp_path: Path, stub: StubControls
) -> None:
    now = [1000.0]
    env = {"IMAGEBOT_PROVIDER_RPM": "1"}
    bot = await start_harness(tmp_path / "output", env, clock=lambda: now[0])
    try:
        first = await bot.say("generate", SMALL, user="x")
        second = await bot.say("generate", SMALL, user="y")
        # The first job's end dispatches again in the same step: no sleep needed to see the
        # second one held back by the cap.
        await until(lambda: statuses(bot)[0] == "done")
        assert first.posts and statuses(bot) == ["done", "accepted"]
        assert bot.runtime.places(Requester("discord", "y"))[0][1] == 1
        now[0] += 61
        bot.runtime.kick()
        await bot.runtime.drain()
    finally:
        await bot.close()
    assert len(second.posts) == 1


async def test_cancel_stops_waiting_and_running_requests_of_that_user_only(
    tmp_path: Path, stub: StubControls
) -> None:
    stub.gate = asyncio.Event()
    bot = await start_harness(tmp_path / "output")
    try:
        running = await bot.say("generate", {**SMALL, "theme": "owls"})
        waiting = await bot.say("prompts", {"count": 3})
        other = await bot.say("generate", SMALL, user="2")
        await until(lambda: len(stub.started) == 2)

        answer = await bot.say("cancel")

        assert answer.texts == [
            "Cancelled 2 requests:\n• 1 image of “owls” with local (was running)\n• 3 prompt specs"
        ]
        stub.gate.set()
        await bot.runtime.drain()
    finally:
        await bot.close()
    assert running.posts == [] and running.texts == [] and waiting.of("file") == []
    assert len(other.posts) == 1
    assert statuses(bot) == ["cancelled", "cancelled", "done"]
    cancelled_batch = next(b for b in bot.batches() if b["job_id"] == bot.jobs()[0]["id"])
    assert (cancelled_batch["status"], cancelled_batch["error"]) == ("failed", "cancelled")


async def test_stop_puts_running_jobs_back_and_the_next_start_answers_them_once(
    tmp_path: Path, stub: StubControls
) -> None:
    stub.gate = asyncio.Event()
    bot = await start_harness(tmp_path / "output")
    await bot.say("generate", {"count": 2, "size": "64x64"})
    await until(lambda: stub.started)
    await bot.close()
    assert statuses(bot) == ["accepted"]

    stub.gate = None
    rebuilt: list[RecordingPort] = []

    def factory(reply: dict) -> RecordingPort:
        rebuilt.append(RecordingPort(reply=reply))
        return rebuilt[-1]

    again = await start_harness(tmp_path / "output", factories={"discord": factory})
    try:
        await again.runtime.drain()
    finally:
        await again.close()
    [port] = rebuilt
    assert port.reply == {"chat": "100", "user": "1", "port": ""}
    [post] = port.posts
    assert len(post.images) == 2 and post.mention == "1"
    assert [b["status"] for b in again.batches()] == ["failed", "complete"]
    assert statuses(again) == ["done"] and again.jobs()[0]["answered"] == 1


async def test_jobs_of_platforms_this_process_does_not_serve_are_left_alone(
    tmp_path: Path, stub: StubControls
) -> None:
    bot = await start_harness(tmp_path / "output")
    bot.runtime.jobs.add({"id": "tg", "kind": "generate", "platform": "telegram", "user_id": "1"})
    await bot.close()

    again = await start_harness(tmp_path / "output", factories={"discord": RecordingPort})
    await again.runtime.drain()
    await again.close()
    assert statuses(again) == ["accepted"]


async def test_an_unexpected_error_is_told_to_the_user_and_the_job_fails(
    tmp_path: Path, stub: StubControls
) -> None:
    bot = await start_harness(tmp_path / "output")

    async def broken(job) -> None:
        raise RuntimeError("disk on fire")

    bot.runtime.set_worker(broken)
    port = RecordingPort()
    job = PromptsJob(count=1, prompt_source="templates")
    try:
        ticket = await bot.runtime.submit(job, Requester("discord", "1", "ann", "100"), {}, port)
        await bot.runtime.drain()
    finally:
        await bot.close()
    assert ticket.place == 0
    assert port.texts == ["Your request failed: disk on fire"]
    [job] = bot.jobs()
    assert (job["status"], job["answered"], job["error"]) == ("failed", 1, "disk on fire")
