"""A group's 20-messages-a-minute budget is shared round-robin between the members waiting on it.

The real aiogram bot polls the loopback fake Bot API, which enforces the group limit on the same
manual clock the bot's pacer reads; the test moves that clock a minute at a time and reads the
order in which posts reached the chat. Nothing waits on real time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from imagebot.bot.app import build_context
from imagebot.bot.settings import Settings
from imagebot.bot.telegram.adapter import TelegramBot
from imagebot.bot.telegram.fair_turns import RoundRobinTurns
from imagebot.bot.telegram.send import Pacer
from tests.fakes.telegram_bot_api import ManualClock
from tests.fakes.telegram_server import FakeTelegram
from tests.fakes.telegram_wire import SentRecord

TOKEN = "42:TEST"
FLOODER, OTHER = 1001, 1002
GROUP = -1001234567890


class MinuteClock(ManualClock):
    """A manual clock whose sleepers wake only when the test moves it (or once set free)."""

    def __init__(self) -> None:
        super().__init__(1000.0)
        self.free = False
        self._moved = asyncio.Event()

    def advance(self, seconds: float) -> None:
        super().advance(seconds)
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()

    async def sleep(self, seconds: float) -> None:
        deadline = self.now + seconds
        while self.now < deadline:
            if self.free:  # draining at the end: time jumps to whoever waits
                self.advance(deadline - self.now)
                break
            await self._moved.wait()
        await asyncio.sleep(0)


def group_records(fake: FakeTelegram) -> list[SentRecord]:
    """The sends that reached the group, in arrival order (an album is one)."""
    return [record for record in fake.sent if record.chat_id == GROUP]


def group_messages(fake: FakeTelegram) -> list[tuple[int, SentRecord]]:
    """Each message the group shows, in arrival order, with the user it answers (0: none)."""
    shown = []
    for record in group_records(fake):
        reply = record.messages[0].get("reply_to_message") or {}
        user = (reply.get("from") or {}).get("id", 0)
        shown += [(user, record)] * len(record.messages)
    return shown


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[tuple[FakeTelegram, TelegramBot, MinuteClock]]:
    clock = MinuteClock()
    async with FakeTelegram(TOKEN, clock=clock) as fake:
        fake.chat(GROUP)
        environ = {
            "IMAGEBOT_OUTPUT_DIR": str(tmp_path / "output"),
            "IMAGEBOT_PROMPT_SOURCE": "templates",
            "IMAGEBOT_PROVIDER": "local",
            "IMAGEBOT_MAX_IMAGES": "10",
            "TELEGRAM_TOKEN": TOKEN,
            "TELEGRAM_API_BASE": fake.base_url,
        }
        ctx = build_context(Settings.from_env(environ=environ, dotenv_path=None))
        telegram = TelegramBot(ctx, sleep=clock.sleep, clock=clock, polling_timeout=1)
        await ctx.runtime.start()
        await telegram.start()
        try:
            yield fake, telegram, clock
        finally:
            clock.free = True
            clock.advance(0)
            await telegram.stop()
            await ctx.runtime.stop()
            await ctx.services.aclose()


async def test_a_members_flood_of_albums_does_not_push_anothers_post_behind_it(
    world: tuple[FakeTelegram, TelegramBot, MinuteClock],
) -> None:
    fake, telegram, clock = world
    pacer = telegram.context.pacer
    for _ in range(50):  # three are queued (10-image albums), the rest refused in the group
        fake.send_command(GROUP, FLOODER, "/generate 10 64x64")
    await fake.wait_for(lambda: len(group_messages(fake)) == 20 and sum(
        pacer.waiting(GROUP).values()) >= 29)  # fmt: skip
    assert {user for user, _ in group_messages(fake)} == {FLOODER}  # the minute is spent

    # The other member asks once; their acknowledgement waits for the next minute.
    ask = fake.send_command(GROUP, OTHER, "/generate 1 64x64")
    await fake.wait_for(lambda: pacer.waiting(GROUP).get(OTHER) == 1)
    clock.advance(60)
    await fake.wait_for(lambda: len(group_messages(fake)) == 40)
    second_minute = group_messages(fake)[20:]
    acks = [n for n, (user, record) in enumerate(second_minute) if user == OTHER]
    # It was the second send let into the minute (after the flooder's that held the turn);
    # texts sent at once may land a little out of order, a FIFO would put it 30 sends later.
    assert acks and acks[0] < 5, f"the other member's reply came {acks} into the minute"
    ack = second_minute[acks[0]][1]
    assert ack.text == "Working on it…"
    assert ack.messages[0]["reply_to_message"]["message_id"] == ask["message"]["message_id"]

    # Their picture is rendered and waits too: it goes out in the next minute, ahead of the
    # flooder's albums (a FIFO would keep it behind every refusal and album queued before it).
    await fake.wait_for(lambda: pacer.waiting(GROUP).get(OTHER) == 1)
    assert not [r for r in group_records(fake) if r.method == "sendPhoto"]
    before = len(group_records(fake))
    clock.advance(60)
    await fake.wait_for(lambda: [r for r in group_records(fake) if r.method == "sendPhoto"])
    third_minute = [r.method for r in group_records(fake)[before:]]
    assert "sendMediaGroup" not in third_minute[: third_minute.index("sendPhoto")]
    assert not [r for r in group_records(fake) if r.method == "sendMediaGroup"][1:]

    # Nothing accepted is lost: once time runs, every queued batch is posted with its buttons.
    clock.free = True
    clock.advance(0)
    await fake.wait_for(lambda: len([r for r in group_records(fake) if r.reply_markup]) == 4)
    albums = [r for r in group_records(fake) if r.method == "sendMediaGroup"]
    assert [len(album.messages) for album in albums] == [10, 10, 10]


async def test_turns_go_round_the_requesters_waiting() -> None:
    turns, served = RoundRobinTurns(), []
    gate = asyncio.Event()

    async def send(who: str) -> None:
        async with turns.turn(who):
            served.append(who)
            await gate.wait()

    first = asyncio.create_task(send("a"))
    await asyncio.sleep(0)
    tasks = [asyncio.create_task(send(who)) for who in ["a", "a", "a", "b", "c", "b"]]
    for _ in range(3):
        await asyncio.sleep(0)
    assert turns.waiting() == {"a": 3, "b": 2, "c": 1}
    gate.set()
    await asyncio.gather(first, *tasks)
    assert served == ["a", "b", "c", "a", "b", "a", "a"]


async def test_a_cancelled_waiter_gives_up_its_place_and_the_turn_moves_on() -> None:
    turns, served = RoundRobinTurns(), []
    gate = asyncio.Event()

    async def send(who: str) -> None:
        async with turns.turn(who):
            served.append(who)
            await gate.wait()

    holder = asyncio.create_task(send("a"))
    await asyncio.sleep(0)
    leaving, staying = asyncio.create_task(send("b")), asyncio.create_task(send("c"))
    await asyncio.sleep(0)
    leaving.cancel()
    await asyncio.gather(leaving, return_exceptions=True)
    assert turns.waiting() == {"c": 1}
    gate.set()
    await asyncio.gather(holder, staying)
    assert served == ["a", "c"]
    async with turns.turn("d"):  # free again: no wait
        assert turns.waiting() == {}


async def test_pacer_serves_the_group_minute_round_robin() -> None:
    clock = MinuteClock()
    pacer, order = Pacer(per_minute=2, clock=clock, sleep=clock.sleep), []

    async def send(who: int, label: str) -> None:
        async with pacer.sending(GROUP, 1, who):
            order.append(label)

    await send(FLOODER, "a1")
    await send(FLOODER, "a2")  # the minute is spent
    waiting = [asyncio.create_task(send(FLOODER, f"a{n}")) for n in range(3, 7)]
    await asyncio.sleep(0)
    waiting.append(asyncio.create_task(send(OTHER, "b1")))
    await asyncio.sleep(0)
    assert pacer.waiting(GROUP) == {FLOODER: 3, OTHER: 1}
    clock.advance(60)
    for _ in range(50):  # the woken sends run on the next few turns of the loop
        if len(order) >= 4:
            break
        await asyncio.sleep(0)
    assert order[2:4] == ["a3", "b1"]
    clock.free = True
    clock.advance(0)
    await asyncio.gather(*waiting)
    assert order[4:] == ["a4", "a5", "a6"]
