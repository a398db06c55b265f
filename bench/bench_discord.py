"""Figures of the chat runtime and the Discord bot (issue 3).

Run: .venv/bin/python bench/bench_discord.py
1. The real bot (`imagebot discord`, a child process, offline: templates + local provider)
   against FakeDiscord on a thread of this process: 100 `/generate` interactions arrive at once;
   the time from the fake sending INTERACTION_CREATE to receiving the defer callback.
2. Load on the runtime (bench_runtime.py): 200 users x `/generate 4`, 16 renders at a time.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_runtime import _pct, bench_load

from common import IMAGEBOT, FakeOnThread, clean_env, line

INTERACTIONS = 100


class StampedList(list):
    """fake.callbacks with the fake's loop time of each append (the callback's arrival)."""

    def __init__(self) -> None:
        super().__init__()
        self.at: dict[str, float] = {}

    def append(self, callback: Any) -> None:
        self.at.setdefault(callback.interaction_id, asyncio.get_running_loop().time())
        super().append(callback)


def _on(thread: FakeOnThread, coro: Any, timeout: float = 60) -> Any:
    return asyncio.run_coroutine_threadsafe(coro, thread._loop).result(timeout)


def bench_acknowledgement(work: Path) -> list[str]:
    from tests.fakes.discord_server import FakeDiscord
    from tests.fakes.discord_world import FakeMember, FakeUser

    thread = FakeOnThread(FakeDiscord)
    with thread as fake:
        stamps = StampedList()
        fake.callbacks = stamps
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
        with (work / "bot.err").open("w") as err:
            process = subprocess.Popen(
                [IMAGEBOT, "discord"], cwd=work, env=env, stdout=err, stderr=err
            )
            try:
                figures = _drive(thread, fake, users)
            finally:
                process.send_signal(signal.SIGINT)
                _, status, usage = os.wait4(process.pid, 0)
    return _ack_lines(*figures, usage.ru_maxrss / 1024)


def _drive(thread: FakeOnThread, fake: Any, users: list[Any]) -> tuple:
    """Warm up with /help, then 100 /generate at once; wait for every batch."""
    _on(thread, fake.wait_for(lambda: fake.commands_for(fake.guild.id), 30, "command sync"))
    _on(thread, fake.wait_until_ready(30))
    probe = _on(thread, fake.send_slash_command("help", {}))
    _on(thread, fake.wait_for(lambda: fake.messages_for_interaction(probe.id), 30, "/help"))
    # One /generate first: its lazy imports (prompt source, renderer) are a one-off, not load.
    warm = _on(thread, fake.send_slash_command("generate", {"count": 1, "size": "64x64"}))
    _on(thread, fake.wait_for(lambda: _posted(fake, warm), 30, "the warm-up batch"))
    cold = (fake.callbacks.at[warm.id] - warm.created_at) * 1000
    alone = _on(thread, fake.send_slash_command("generate", {"count": 1, "size": "64x64"}))
    _on(thread, fake.wait_for(lambda: _posted(fake, alone), 30, "a second batch"))
    cold = (cold, (fake.callbacks.at[alone.id] - alone.created_at) * 1000)

    async def burst() -> list[Any]:
        sends = [
            fake.send_slash_command("generate", {"count": 1, "size": "64x64"}, user=user)
            for user in users
        ]
        return list(await asyncio.gather(*sends))

    started = time.perf_counter()
    records = _on(thread, burst())

    def all_posted() -> bool:
        return all(any(m.attachments for m in fake.messages_for_interaction(r.id)) for r in records)

    _on(thread, fake.wait_for(lambda: all(r.acked for r in records), 30, "every defer"))
    acked_all = time.perf_counter() - started
    everything = fake.wait_for(lambda: all(_posted(fake, r) for r in records), 120, "every batch")
    _on(thread, everything, 130)
    posted_all = time.perf_counter() - started
    # When each defer request reached the fake: the bot sent it then (loopback), before the
    # fake's own processing of the 99 others queues it behind them.
    arrived = {}
    for logged in fake.requests:
        if logged.path.startswith("/interactions/") and logged.path.endswith("/callback"):
            arrived.setdefault(logged.path.split("/")[2], logged.received_at)
    delays = [(arrived[r.id] - r.created_at) * 1000 for r in records]
    kinds = [r.callbacks[0].type for r in records]
    return delays, kinds, acked_all, posted_all, cold


def _posted(fake: Any, record: Any) -> bool:
    return any(m.attachments for m in fake.messages_for_interaction(record.id))


def _ack_lines(
    delays: list[float],
    kinds: list[int],
    acked_all: float,
    posted_all: float,
    cold: tuple[float, float],
    peak: float,
) -> list[str]:
    p99 = _pct(delays, 0.99)
    deferred = sum(1 for kind in kinds if kind == 5)
    return [
        line(
            f"{INTERACTIONS} /generate at once: INTERACTION_CREATE -> defer",
            f"p50 {statistics.median(delays):.0f} ms, p95 {_pct(delays, 0.95):.0f} ms",
        ),
        line("  p99 / max", f"{p99:.0f} ms / {max(delays):.0f} ms", "p99 < 50 ms", p99 < 50),
        line(
            "  answered with a defer (type 5)",
            f"{deferred} / {INTERACTIONS}",
            f"all within {acked_all:.2f} s",
            deferred == INTERACTIONS,
        ),
        line(
            "  batches posted (1 image 64x64, local)",
            f"{INTERACTIONS} / {INTERACTIONS}",
            f"all within {posted_all:.1f} s",
        ),
        line("  one /generate alone: first (cold) / second", "{:.0f} ms / {:.0f} ms".format(*cold)),
        line("  peak memory of the bot process", f"{peak:.0f} MB"),
    ]


def main() -> None:
    sections = [bench_acknowledgement, bench_load]
    print(f"{'measure':<52} {'figure':<26} target")
    started = time.perf_counter()
    for section in sections:
        with tempfile.TemporaryDirectory() as folder:
            for text in section(Path(folder)):
                print(text, flush=True)
    print(line("bench run time", f"{time.perf_counter() - started:.0f} s"))
    sys.exit(0)


if __name__ == "__main__":
    main()
