"""Figures of the chat runtime and the Discord bot (issue 3).

Run: .venv/bin/python bench/bench_discord.py
1. The real bot (`imagebot discord`, a child process, offline: templates + local provider)
   against FakeDiscord on a thread of this process: bursts of 100 `/generate` interactions at
   once; the time from the fake sending INTERACTION_CREATE to receiving the defer callback.
   The same bursts against a bare discord.py bot that only defers (discord_floor_bot.py) give
   the floor that the library and the machine set.
2. Load on the runtime (bench_runtime.py): 200 users x `/generate 4`, 16 renders at a time.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from bench_runtime import _pct, bench_load

from common import IMAGEBOT, FakeOnThread, clean_env, line, run_sections

INTERACTIONS = 100
BURSTS = 5
PAUSE = 1.0  # seconds of quiet before each burst: it meets an idle bot
FLOOR_BOT = str(Path(__file__).with_name("discord_floor_bot.py"))


@dataclass
class Burst:
    delays: list[float]  # ms from INTERACTION_CREATE sent to the defer callback received
    deferred: int  # callbacks of type 5
    acked_in: float  # s until every defer had arrived
    posted_in: float | None  # s until every batch was posted (None: the floor posts nothing)
    cpu_ms: float  # CPU the bot process used from the burst's start until every defer arrived


@dataclass
class AckRun:
    bursts: list[Burst]
    alone: tuple[float, float] | None  # one /generate on its own: first and second, ms
    peak_mb: float


def _on(thread: FakeOnThread, coro: Any, timeout: float = 60) -> Any:
    return asyncio.run_coroutine_threadsafe(coro, thread._loop).result(timeout)


def bench_acknowledgement(work: Path) -> list[str]:
    imagebot = _ack_run(work / "imagebot", [IMAGEBOT, "discord"], product=True)
    floor = _ack_run(work / "floor", [sys.executable, FLOOR_BOT], product=False)
    return _ack_lines(imagebot, floor)


def _ack_run(work: Path, command: list[str], product: bool) -> AckRun:
    """Start the bot against a fresh fake; warm up; BURSTS bursts of 100 /generate."""
    from tests.fakes.discord_server import FakeDiscord
    from tests.fakes.discord_world import FakeMember, FakeUser

    work.mkdir()
    thread = FakeOnThread(FakeDiscord)
    with thread as fake:
        role = fake.member.role_ids
        users = [
            FakeMember(FakeUser(fake.ids.next(), f"user{n}"), list(role))
            for n in range(INTERACTIONS)
        ]
        fake.guild.members.extend(users)
        env = clean_env(
            work,
            IMAGEBOT_PROMPT_SOURCE="templates",
            DISCORD_TOKEN=fake.token,
            DISCORD_API_BASE=fake.api_base,
            DISCORD_GUILD_IDS=fake.guild.id,
        )
        with (work / "imagebot.bot.err").open("w") as err:
            process = subprocess.Popen(command, cwd=work, env=env, stdout=err, stderr=err)
            try:
                _on(thread, fake.wait_for(lambda: fake.commands_for(fake.guild.id), 30, "sync"))
                _on(thread, fake.wait_until_ready(30))
                alone = _warm_up(thread, fake) if product else None
                bursts = [_burst(thread, fake, users, product, process.pid) for _ in range(BURSTS)]
            finally:
                process.send_signal(signal.SIGINT)
                _, _, usage = os.wait4(process.pid, 0)
    return AckRun(bursts, alone, usage.ru_maxrss / 1024)


def _warm_up(thread: FakeOnThread, fake: Any) -> tuple[float, float]:
    """/help, then two lone /generate: their lazy imports are a one-off, not load."""
    probe = _on(thread, fake.send_slash_command("help", {}))
    _on(thread, fake.wait_for(lambda: fake.messages_for_interaction(probe.id), 30, "/help"))
    alone = []
    for _ in range(2):
        record = _on(thread, fake.send_slash_command("generate", {"count": 1, "size": "64x64"}))
        _on(thread, fake.wait_for(partial(_posted, fake, record), 30, "a lone batch"))
        alone.append(_delays(fake, [record])[0])
    return alone[0], alone[1]


def _cpu_ms(pid: int) -> float:
    """CPU time of every thread of `pid` so far, in ms (Linux schedstat: nanosecond counts)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass  # a thread that ended meanwhile
    return total / 1e6


def _burst(thread: FakeOnThread, fake: Any, users: list[Any], product: bool, pid: int) -> Burst:
    """After PAUSE s of quiet, 100 /generate at once; wait for every defer (and batch)."""
    time.sleep(PAUSE)

    async def burst() -> list[Any]:
        sends = [
            fake.send_slash_command("generate", {"count": 1, "size": "64x64"}, user=user)
            for user in users
        ]
        return list(await asyncio.gather(*sends))

    started, cpu_before = time.perf_counter(), _cpu_ms(pid)
    records = _on(thread, burst())
    _on(thread, fake.wait_for(lambda: all(r.acked for r in records), 30, "every defer"))
    acked_in = time.perf_counter() - started
    cpu_ms = _cpu_ms(pid) - cpu_before
    posted_in = None
    if product:
        everything = fake.wait_for(lambda: all(_posted(fake, r) for r in records), 120, "batches")
        _on(thread, everything, 130)
        posted_in = time.perf_counter() - started
    deferred = sum(1 for r in records if r.callbacks[0].type == 5)
    return Burst(_delays(fake, records), deferred, acked_in, posted_in, cpu_ms)


def _delays(fake: Any, records: list[Any]) -> list[float]:
    """ms from the fake creating each interaction to its defer request reaching the fake."""
    arrived = {}
    for logged in fake.requests:
        if logged.path.startswith("/interactions/") and logged.path.endswith("/callback"):
            arrived.setdefault(logged.path.split("/")[2], logged.received_at)
    return [(arrived[r.id] - r.created_at) * 1000 for r in records]


def _posted(fake: Any, record: Any) -> bool:
    return any(m.attachments for m in fake.messages_for_interaction(record.id))


def _summary(bursts: list[Burst]) -> str:
    delays = [d for b in bursts for d in b.delays]
    return f"p50 {statistics.median(delays):.0f} ms, p99 {_pct(delays, 0.99):.0f} ms"


def _cpu_per_interaction(bursts: list[Burst]) -> float:
    return statistics.median(b.cpu_ms for b in bursts) / INTERACTIONS


def _ack_lines(imagebot: AckRun, floor: AckRun) -> list[str]:
    first, warm = imagebot.bursts[0], imagebot.bursts[1:]
    warm_p99 = _pct([d for b in warm for d in b.delays], 0.99)
    floor_p99 = _pct([d for b in floor.bursts[1:] for d in b.delays], 0.99)
    worst = max(_pct(b.delays, 0.99) for b in imagebot.bursts)
    deferred = sum(b.deferred for b in imagebot.bursts)
    total = INTERACTIONS * len(imagebot.bursts)
    lines = [
        line(f"{INTERACTIONS} /generate at once -> defer reaches the fake", ""),
        line("  burst 1 (a new connection per defer)", _summary([first])),
        line(f"  bursts 2-{BURSTS} (pooled connections)", _summary(warm), "p99 < 50 ms"),
        line("  worst burst p99", f"{worst:.0f} ms", "p99 < 50 ms", worst < 50),
        line("  bare discord.py, defer only: burst 1", _summary(floor.bursts[:1])),
        line(f"  bare discord.py, defer only: bursts 2-{BURSTS}", _summary(floor.bursts[1:])),
        line("  imagebot / bare discord.py (p99, pooled)", f"{warm_p99 / floor_p99:.2f}x"),
        line(
            "  bot CPU per interaction until all deferred",
            f"{_cpu_per_interaction(warm):.2f} ms",
            f"bare discord.py {_cpu_per_interaction(floor.bursts[1:]):.2f} ms",
        ),
        line(
            "  deferred (type 5)",
            f"{deferred} / {total}",
            f"slowest burst all in {max(b.acked_in for b in imagebot.bursts):.2f} s",
            deferred == total,
        ),
        line(
            "  batches posted (1 image 64x64, local)",
            f"{total} / {total}",
            f"each burst within {max(b.posted_in or 0 for b in imagebot.bursts):.1f} s",
        ),
    ]
    if imagebot.alone is not None:
        lone, again = imagebot.alone
        lines.append(line("  one /generate alone: first / second", f"{lone:.0f} / {again:.0f} ms"))
    lines.append(line("  peak memory of the bot process", f"{imagebot.peak_mb:.0f} MB"))
    return lines


def main() -> None:
    run_sections(bench_acknowledgement, bench_load)


if __name__ == "__main__":
    main()
