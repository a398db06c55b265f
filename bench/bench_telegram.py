"""Load on the Telegram bot (issue 4): the runtime load test through the real aiogram adapter.

Run: .venv/bin/python bench/bench_telegram.py
The real bot (`imagebot telegram`, a child process; templates + `stable-diffusion` on 16
FakeWebUI servers of 500 ms per image, IMAGEBOT_PROVIDER_CONCURRENCY=16) polls FakeTelegram on
a thread of this process; the fake enforces 30 messages/s overall and 20 a minute per group.
1. 200 private chats, each user `/generate 4 64x64` at once (only the 30/s limit applies).
2. 4 groups x 6 users, each `/generate 4 64x64` at once: 36 messages per group, so the 20 a
   minute per group decides the time.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_runtime import CAP_RATE, LATENCY, SERVERS, WebUIFleet

from common import IMAGEBOT, FakeOnThread, clean_env, line, run_sections

TOKEN = "42:TEST"
USERS, COUNT, SIZE = 200, 4, "64x64"
GROUPS, PER_GROUP = 4, 6
WARM_CHAT = 999_999
GROUP_BASE = -1001000000000
FAILED = ("Sorry", "Something went wrong", "Your request failed")


class StampedSent(list):
    """fake.sent with the fake's loop time of each successful send (what counts as messages)."""

    def __init__(self) -> None:
        super().__init__()
        self.at: list[float] = []

    def append(self, record: Any) -> None:
        self.at.append(time.perf_counter())
        super().append(record)


@dataclass
class Scenario:
    name: str
    seconds: float
    chats: list[int]
    answers: dict[int, int]  # chat -> buttons messages (one per answered request)
    done_at: list[float]  # seconds from the burst to each buttons message (an answer)
    images: int
    messages: int
    peak_per_s: int
    peak_per_group_min: int
    too_many: int
    too_many_by_method: dict[str, int]
    left_shown: int
    failures: int


def _on(thread: FakeOnThread, coro: Any, timeout: float = 60) -> Any:
    return asyncio.run_coroutine_threadsafe(coro, thread._loop).result(timeout)


def _peak(stamps: list[tuple[float, int]], window: float) -> int:
    """Most messages within any `window` seconds (stamps: time, messages)."""
    best, start, total = 0, 0, 0
    for end in range(len(stamps)):
        total += stamps[end][1]
        while stamps[end][0] - stamps[start][0] >= window:
            total -= stamps[start][1]
            start += 1
        best = max(best, total)
    return best


async def _wait_quietly(fake: Any, condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError
        await asyncio.sleep(0.05)


async def _send_all(fake: Any, commands: list[tuple[int, int]]) -> None:
    for chat, user in commands:
        fake.send_command(chat, user, f"/generate {COUNT} {SIZE}")


def _buttons(fake: Any, chat: int) -> int:
    return sum(1 for r in fake.sent if r.chat_id == chat and r.reply_markup)


def run_scenario(
    thread: FakeOnThread, fake: Any, name: str, commands: list[tuple[int, int]], timeout: float
) -> Scenario:
    """Send every command at once, wait for every answer; what the fake saw meanwhile."""
    chats = sorted({chat for chat, _ in commands})
    first_sent, first_request = len(fake.sent), len(fake.requests)
    refused_before = fake.too_many_requests
    started = time.perf_counter()
    _on(thread, _send_all(fake, commands))
    wanted = {chat: sum(1 for c, _ in commands if c == chat) for chat in chats}

    def answered() -> bool:
        return all(_buttons(fake, chat) >= n for chat, n in wanted.items())

    try:
        _on(thread, _wait_quietly(fake, answered, timeout), timeout + 10)
    except TimeoutError:
        print(f"  ({name}: not every request answered within {timeout:.0f} s)", flush=True)
    seconds = time.perf_counter() - started
    time.sleep(1.0)  # anything answered twice, or a late progress deletion, shows up now
    records = list(fake.sent)[first_sent:]
    stamps = list(zip(fake.sent.at[first_sent:], records, strict=True))
    done_at = [at - started for at, record in stamps if record.reply_markup]
    per_group = 0
    for chat in chats:
        if chat < 0:
            mine = [(at, len(r.messages)) for at, r in stamps if r.chat_id == chat]
            per_group = max(per_group, _peak(mine, 60.0))
    refused: dict[str, int] = {}
    for call in list(fake.requests)[first_request:]:
        if call.status == 429:
            refused[call.method] = refused.get(call.method, 0) + 1
    # Text messages still shown once answered: a progress message not deleted, or a failure.
    texts = [r for r in records if r.method == "sendMessage" and not r.reply_markup]
    stray = [r for r in texts if (r.chat_id, r.message_id) in fake.messages]
    return Scenario(
        name=name,
        seconds=seconds,
        chats=chats,
        answers={chat: _buttons(fake, chat) for chat in chats},
        done_at=done_at,
        images=sum(len(r.messages) for r in records if r.method in ("sendMediaGroup", "sendPhoto")),
        messages=sum(len(r.messages) for r in records),
        peak_per_s=_peak([(at, len(r.messages)) for at, r in stamps], 1.0),
        peak_per_group_min=per_group,
        too_many=fake.too_many_requests - refused_before,
        too_many_by_method=refused,
        left_shown=len(stray),
        failures=sum(1 for r in texts if (r.text or "").startswith(FAILED)),
    )


def _wait_ready(thread: FakeOnThread, fake: Any) -> float:
    """Until the bot polls, then one warm-up /generate 1 (lazy imports are a one-off)."""
    _on(thread, fake.wait_for(lambda: any(c.method == "getUpdates" for c in fake.requests), 60))
    started = time.perf_counter()
    _on(thread, _send_one(fake, WARM_CHAT, "/generate 1 64x64"))
    _on(thread, fake.wait_for(lambda: _buttons(fake, WARM_CHAT), 60), 70)
    return time.perf_counter() - started


async def _send_one(fake: Any, chat: int, text: str) -> None:
    fake.send_command(chat, chat if chat > 0 else 1, text)


def bench_telegram(work: Path) -> list[str]:
    """Both scenarios against one bot process; the summary lines."""
    from tests.fakes.telegram_server import FakeTelegram

    private = [(1000 + n, 1000 + n) for n in range(USERS)]
    groups = [GROUP_BASE - g for g in range(GROUPS)]
    shared = [(g, 5000 + n * GROUPS + i) for n in range(PER_GROUP) for i, g in enumerate(groups)]
    thread = FakeOnThread(lambda: FakeTelegram(TOKEN))
    with FakeOnThread(lambda: WebUIFleet(SERVERS, LATENCY)) as fleet, thread as fake:
        fake.sent = StampedSent()
        env = clean_env(
            work,
            IMAGEBOT_PROMPT_SOURCE="templates",
            IMAGEBOT_PROVIDER="stable-diffusion",
            STABLE_DIFFUSION_URL=fleet.urls,
            IMAGEBOT_PROVIDER_CONCURRENCY=str(SERVERS),
            TELEGRAM_TOKEN=TOKEN,
            TELEGRAM_API_BASE=fake.base_url,
        )
        with (work / "imagebot.bot.err").open("w") as err:
            process = subprocess.Popen(
                [IMAGEBOT, "telegram"], cwd=work, env=env, stdout=err, stderr=err
            )
            try:
                warm = _wait_ready(thread, fake)
                one = run_scenario(thread, fake, "private", private, 240)
                two = run_scenario(thread, fake, "groups", shared, 240)
            finally:
                process.send_signal(signal.SIGINT)
                _, status, usage = os.wait4(process.pid, 0)
        rendered = sum(server.images_rendered for server in fleet.servers)
    jobs = _jobs(work / "output" / "archive.db")
    warnings = (work / "imagebot.bot.err").read_text().count("flood control")
    return _lines(one, two, warm, usage.ru_maxrss / 1024, rendered, jobs, warnings)


def _jobs(db: Path) -> dict[str, Any]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("select status, answered, count(*) from jobs group by 1, 2")
        return {f"{status}{'' if answered else ' (unanswered)'}": n for status, answered, n in rows}


def _scenario_lines(s: Scenario, requests: int, layout: str, check: Callable) -> list[str]:
    expected = requests * COUNT
    rate = s.images / s.seconds
    lost = sum(1 for n in s.answers.values() if n == 0) + max(0, requests - sum(s.answers.values()))
    twice = sum(max(0, n - 1) for n in s.answers.values()) if len(s.answers) == requests else 0
    if len(s.answers) < requests:  # several requests share a chat: count the surplus only
        twice = max(0, sum(s.answers.values()) - requests)
    done = sorted(s.done_at)
    methods = ", ".join(f"{m} {n}" for m, n in sorted(s.too_many_by_method.items())) or "none"
    return [
        line(layout, f"{s.seconds:.1f} s", check(s)),
        line("  images posted / expected", f"{s.images} / {expected}", "", s.images == expected),
        line("  images/s (posted)", f"{rate:.1f}", f"(render cap {CAP_RATE:.0f}/s)"),
        line(
            "  429s given by the fake",
            f"{s.too_many}",
            f"0 ({methods})",
            s.too_many == 0,
        ),
        line("  messages sent / peak in any 1 s", f"{s.messages} / {s.peak_per_s}", "<= 30"),
        line(
            "  first answer / median / last",
            f"{done[0]:.1f} / {done[len(done) // 2]:.1f} / {done[-1]:.1f} s" if done else "-",
        ),
        line(
            "  jobs lost / answered twice",
            f"{lost} / {twice}",
            "0 / 0",
            lost == 0 and twice == 0,
        ),
        line(
            "  failure replies / text messages left shown",
            f"{s.failures} / {s.left_shown}",
            "0 / 0",
            s.failures == 0 and s.left_shown == 0,
        ),
    ]


def _lines(
    one: Scenario,
    two: Scenario,
    warm: float,
    peak: float,
    rendered: int,
    jobs: dict[str, Any],
    warnings: int,
) -> list[str]:
    ideal_one = USERS * COUNT / CAP_RATE
    messages_one = USERS * (1 + COUNT + 1)
    per_group = PER_GROUP * (1 + COUNT + 1)
    return [
        line("warm-up /generate 1 in a private chat", f"{warm:.2f} s"),
        *_scenario_lines(
            one,
            USERS,
            f"{USERS} private chats x /generate {COUNT} {SIZE}",
            lambda s: (
                f"(renders {ideal_one:.0f} s; {messages_one} msgs at 30/s "
                f"{messages_one / 30:.0f} s)"
            ),
        ),
        *_scenario_lines(
            two,
            GROUPS * PER_GROUP,
            f"{GROUPS} groups x {PER_GROUP} users x /generate {COUNT}",
            lambda s: f"({per_group} msgs/group at 20/min)",
        ),
        line("  most messages to one group in any 60 s", f"{two.peak_per_group_min}", "<= 20"),
        line("images rendered by the fakes (incl. warm-up)", f"{rendered}"),
        line("jobs table", ", ".join(f"{k} {v}" for k, v in sorted(jobs.items()))),
        line("'flood control' waits logged by the bot", f"{warnings}"),
        line("peak memory of the bot process (ru_maxrss)", f"{peak:.0f} MB"),
    ]


def main() -> None:
    run_sections(bench_telegram)


if __name__ == "__main__":
    main()
