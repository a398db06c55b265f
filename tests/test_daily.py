"""/daily (set, off, show) and the daily scheduler, offline: templates + the local renderer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from imagebot.bot.cli import main
from imagebot.bot.daily import DailyScheduler, next_role
from imagebot.bot.settings import Settings
from imagebot.commands.arguments import named
from imagebot.commands.catalog import BY_NAME
from imagebot.commands.chat.daily import parse_daily
from imagebot.commands.services import Services
from imagebot.providers.base import UsageError
from imagebot.providers.roles import role_ids
from imagebot.storage.daily import DailyStore
from imagebot.storage.index import Index
from tests.recording_port import Harness, RecordingPort, start_harness

MORNING = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # before the 09:30 schedules below


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    env = {"IMAGEBOT_OUTPUT_DIR": str(tmp_path / "output"), "HORDE_API_KEY": "0000000000"}
    return Settings.from_env(env, dotenv_path=None)


class Chats:
    """The telegram platform's ports, one per address the runtime asks for."""

    def __init__(self) -> None:
        self.ports: list[RecordingPort] = []

    def __call__(self, reply: dict) -> RecordingPort:
        self.ports.append(RecordingPort(reply=reply))
        return self.ports[-1]

    @property
    def posts(self) -> list[Any]:
        return [post for port in self.ports for post in port.posts]


@pytest.fixture
def chats() -> Chats:
    return Chats()


@pytest.fixture
async def bot(tmp_path: Path, chats: Chats) -> AsyncIterator[Harness]:
    harness = await start_harness(
        tmp_path / "output", factories={"telegram": chats}, clock=lambda: 0.0
    )
    harness.commands.clock = lambda: MORNING
    yield harness
    await harness.close()


@pytest.fixture
def services(bot: Harness) -> Services:
    return bot.services


def options(text: str) -> dict[str, Any]:
    return named(BY_NAME["daily"], {"text": text})


async def daily(bot: Harness, text: str, now: datetime = MORNING, **kw: Any) -> RecordingPort:
    bot.commands.clock = lambda: now
    return await bot.say("daily", {"text": text}, chat="100", user="7", platform="telegram",
                         moderator=kw.get("moderator", True))  # fmt: skip


def schedules(services: Services) -> list[dict[str, Any]]:
    return DailyStore(services.index.db).all()


async def set_schedule(bot: Harness, text: str = "set 09:30 local 128x128 1") -> None:
    port = await daily(bot, text)
    assert port.texts[0].startswith("Daily post set"), port.texts


async def run_due(bot: Harness, when: datetime, scheduler: DailyScheduler | None = None) -> list:
    """One scheduler pass at `when`, then every post it queued answered."""
    scheduler = scheduler or DailyScheduler(bot.services, bot.runtime)
    queued = await scheduler.run_due(when)
    await bot.runtime.drain()
    return queued


# ------------------------------------------------------------------ parsing and validation


def test_parse_every_form(settings: Settings) -> None:
    config = settings.command_config
    words = parse_daily(options("set 9:30 local 512x256 3"), config)
    assert (words.action, words.time_utc, words.provider, words.size, words.count) == (
        "set", "09:30", "local", "512x256", 3,
    )  # fmt: skip
    reordered = parse_daily(options("set 23:59 2 128x128"), config)
    assert (reordered.time_utc, reordered.count, reordered.size) == ("23:59", 2, "128x128")
    defaults = parse_daily({"action": "set", "time": "00:00"}, config)
    assert (defaults.provider, defaults.size, defaults.count) == ("local", "1024x1024", 4)
    by_name = parse_daily(
        {"action": "set", "time": "07:05", "provider": "horde", "size": "512x512", "count": 10},
        config,
    )
    assert (by_name.provider, by_name.count) == ("horde", 10)
    assert parse_daily(options("off"), config).action == "off"
    assert parse_daily({"action": "show"}, config).action == "show"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("set 25:00", "time '25:00' is not a time of day"),
        ("set 9am", "time '9am' is not a time of day"),
        ("set 12:60", "00:00 to 23:59"),
        ("set", "needs a time"),
        ("off now", "'now' is not an argument of /daily off"),
        ("set 09:30 midjourney", "unknown provider 'midjourney'; choose one of"),
        ("set 09:30 dalle", "provider 'dalle' is not configured"),
        ("set 09:30 512x", "unknown provider '512x'"),
        ("set 09:30 10x10", "out of range"),
        ("set 09:30 0", "count must be a whole number from 1 to 10, got '0'"),
        ("set 09:30 11", "count must be a whole number from 1 to 10, got '11'"),
        ("sometimes", "unknown /daily action 'sometimes'"),
        ("", "say what to do"),
    ],
)
async def test_bad_input_gets_one_clear_private_message_and_stores_nothing(
    bot: Harness, services: Services, text: str, says: str
) -> None:
    port = await daily(bot, text)

    [call] = port.calls
    assert call.method == "text" and call.private
    assert says.lower() in call.text.lower() and "Nothing was changed" in call.text
    assert schedules(services) == []


def test_parse_daily_raises_usage_error_on_bad_size(settings: Settings) -> None:
    with pytest.raises(UsageError, match="out of range"):
        parse_daily(
            {"action": "set", "time": "09:30", "size": "9000x9000"}, settings.command_config
        )


async def test_non_moderator_is_refused_and_nothing_stored(
    bot: Harness, services: Services
) -> None:
    port = await daily(bot, "set 09:30", moderator=False)
    shown = await daily(bot, "show", moderator=False)

    for answer, action in ((port, "set"), (shown, "show")):
        [call] = answer.calls
        assert call.private and f"/daily {action} is for moderators only" in call.text
    assert schedules(services) == []


async def test_set_show_off_round_trip(bot: Harness, services: Services) -> None:
    set_port = await daily(bot, "set 09:30 local 512x512 2")
    show_port = await daily(bot, "show")
    off_port = await daily(bot, "off")
    again = await daily(bot, "off")
    empty = await daily(bot, "show")

    expected = "every day at 09:30 UTC: 2 images of 512x512 with local; next post today at 09:30"
    assert set_port.texts == [f"Daily post set: {expected} UTC."]
    assert not set_port.of("text")[0].private
    assert show_port.texts == [f"Daily post: {expected} UTC."]
    assert off_port.texts == ["Daily post turned off for this chat."]
    assert "no daily post" in again.texts[0] and "No daily post is set" in empty.texts[0]
    assert schedules(services) == []


async def test_set_replaces_the_chats_schedule_and_a_passed_time_starts_tomorrow(
    bot: Harness, services: Services
) -> None:
    await set_schedule(bot)
    port = await daily(bot, "set 07:00", now=MORNING)

    [row] = schedules(services)
    assert (row["id"], row["time_utc"], row["count"], row["size"]) == (
        "telegram:100", "07:00", 4, "1024x1024",
    )  # fmt: skip
    assert row["reply"]["chat"] == "100" and row["created_by"] == "7"
    assert "next post tomorrow at 07:00 UTC" in port.texts[0]


# ------------------------------------------------------------------ the scheduler


def at(hour: int, minute: int = 0, day: int = 0) -> datetime:
    return MORNING.replace(hour=hour, minute=minute) + timedelta(days=day)


async def test_fires_once_at_its_time_with_a_real_archived_batch(
    bot: Harness, chats: Chats
) -> None:
    await set_schedule(bot)
    scheduler = DailyScheduler(bot.services, bot.runtime, clock=lambda: at(9, 29))

    assert await scheduler.run_due() == []  # one minute early
    assert await run_due(bot, at(9, 30), scheduler) == ["telegram:100"]
    assert await run_due(bot, at(9, 45), scheduler) == []  # the same day again

    [post] = chats.posts
    [image] = post.images
    with Image.open(image) as opened:
        assert opened.size == (128, 128)
    folder = image.parent
    assert folder.is_relative_to(bot.services.archive.root)
    info = json.loads((folder / "info.json").read_text())
    assert info["role"] in role_ids() and info["requested_by"]["chat_id"] == "100"
    assert info["requested_by"]["user_name"] == "daily"
    [stored] = schedules(bot.services)
    assert stored["last_run_date"] == "2026-03-02" and stored["last_role"] == info["role"]
    [job] = [row for row in bot.jobs() if row["user_name"] == "daily"]
    assert (job["kind"], job["status"], job["answered"]) == ("generate", "done", 1)


async def test_a_daily_post_is_a_queued_job_under_the_providers_cap(
    tmp_path: Path, chats: Chats, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.recording_port import install_stub

    controls = install_stub(monkeypatch)
    import asyncio

    controls.gate = asyncio.Event()
    env = {"IMAGEBOT_PROVIDER_CONCURRENCY": "1"}
    bot = await start_harness(tmp_path / "output", env, factories={"telegram": chats})
    try:
        bot.commands.clock = lambda: MORNING
        await set_schedule(bot, "set 09:30 local 64x64 1")
        user = await bot.say("generate", {"count": 1, "size": "64x64", "provider": "local"},
                             chat="200", user="9")  # fmt: skip
        assert await DailyScheduler(bot.services, bot.runtime).run_due(at(9, 30)) == [
            "telegram:100"
        ]
        # One render at a time for the provider: the daily post waits behind the user's job.
        await controls.wait_started(1)
        [queued] = [row for row in bot.jobs() if row["user_name"] == "daily"]
        assert queued["status"] == "accepted"  # dispatch is synchronous: it did not start
        daily_port = chats.ports[-1]
        assert daily_port.reply["scheduled"] is True
        controls.gate.set()
        await bot.runtime.drain()
    finally:
        await bot.close()
    assert len(user.posts) == 1 and len(daily_port.posts) == 1
    assert len(controls.started) == 2


async def test_a_restarted_scheduler_does_not_post_twice_and_next_day_fires_again(
    bot: Harness, chats: Chats, settings: Settings, tmp_path: Path
) -> None:
    await set_schedule(bot)
    assert await run_due(bot, at(9, 31)) == ["telegram:100"]
    await bot.close()

    second_chats = Chats()
    restarted = await start_harness(tmp_path / "output", factories={"telegram": second_chats})
    try:  # a new process: new objects, the same index
        assert await run_due(restarted, at(9, 40)) == []
        assert await run_due(restarted, at(23, 59)) == []
        assert await run_due(restarted, at(9, 29, day=1)) == []
        assert await run_due(restarted, at(9, 30, day=1)) == ["telegram:100"]
        [stored] = schedules(restarted.services)
    finally:
        await restarted.close()
    [day_one] = chats.posts
    [day_two] = second_chats.posts
    roles = [json.loads((p.images[0].parent / "info.json").read_text())["role"]
             for p in (day_one, day_two)]  # fmt: skip
    assert roles[0] != roles[1]  # the theme rotates
    assert stored["last_run_date"] == "2026-03-03" and stored["last_role"] == roles[1]


async def test_start_30_minutes_late_posts_once_but_2_hours_late_skips_the_day(
    bot: Harness, chats: Chats
) -> None:
    await set_schedule(bot)
    scheduler = DailyScheduler(bot.services, bot.runtime)

    assert await run_due(bot, at(10, 0), scheduler) == ["telegram:100"]
    assert await run_due(bot, at(10, 1), scheduler) == []
    assert await run_due(bot, at(11, 30, day=1), scheduler) == []  # down all morning: skipped
    assert await run_due(bot, at(12, 0, day=1), scheduler) == []
    [stored] = schedules(bot.services)
    assert stored["last_run_date"] == "2026-03-03"  # marked, so it never doubles
    assert await run_due(bot, at(9, 30, day=2), scheduler) == ["telegram:100"]
    assert len(chats.posts) == 2


async def test_a_post_queued_before_a_crash_is_answered_once_after_it(
    tmp_path: Path, bot: Harness, chats: Chats
) -> None:
    await set_schedule(bot)
    await bot.runtime.stop()  # the process dies before any worker picks the post up
    assert await DailyScheduler(bot.services, bot.runtime).run_due(at(9, 30)) == ["telegram:100"]
    await bot.close()

    after = Chats()
    restarted = await start_harness(tmp_path / "output", factories={"telegram": after})
    try:
        await restarted.runtime.drain()
        assert await run_due(restarted, at(9, 35)) == []  # claimed: never a second post
    finally:
        await restarted.close()
    assert chats.posts == [] and len(after.posts) == 1
    assert after.ports[0].reply["scheduled"] is True


def test_the_role_rotation_never_repeats_a_role_two_days_running() -> None:
    roles = role_ids()
    assert len(roles) >= 2
    role = None
    for _ in range(len(roles) * 2):
        following = next_role(roles, role)
        assert following in roles and following != role
        role = following
    assert next_role(["only"], "only") == "only"


async def test_a_provider_gone_missing_is_told_to_the_chat(bot: Harness, chats: Chats) -> None:
    DailyStore(bot.services.index.db).upsert(
        {"platform": "telegram", "chat_id": "100", "time_utc": "09:30", "provider": "dalle",
         "size": "128x128", "count": 1, "reply": {"chat": "100"}}
    )  # fmt: skip
    assert await run_due(bot, at(9, 30)) == ["telegram:100"]

    [port] = chats.ports
    [text] = port.texts
    assert text.startswith("Today's daily post could not be made: provider 'dalle'")
    assert port.reply["scheduled"] is True and port.reply["chat"] == "100"


async def test_the_post_has_the_batch_buttons(bot: Harness, chats: Chats) -> None:
    await set_schedule(bot, "set 09:30 local 128x128 2")
    await run_due(bot, at(9, 30))

    port = chats.ports[-1]
    [post] = port.posts
    assert len(post.images) == 2 and all(path.is_file() for path in post.images)
    assert [button.action for button in post.buttons[0]] == ["reroll", "again", "delete"]
    assert post.mention is None  # a daily post mentions nobody
    assert {key: port.reply[key] for key in ("scheduled", "platform", "chat_id", "guild_id")} == {
        "scheduled": True, "platform": "telegram", "chat_id": "100", "guild_id": "7"}  # fmt: skip


def test_seconds_to_next_wakes_at_the_next_time_or_every_30_seconds(bot: Harness) -> None:
    scheduler = DailyScheduler(bot.services, bot.runtime)
    assert scheduler.seconds_to_next(at(9, 0)) == 30.0  # nothing scheduled
    DailyStore(bot.services.index.db).upsert(
        {"platform": "telegram", "chat_id": "1", "time_utc": "09:30", "provider": "local",
         "size": "128x128", "count": 1}
    )  # fmt: skip
    assert scheduler.seconds_to_next(at(9, 0)) == 30.0  # half an hour away: poll meanwhile
    assert scheduler.seconds_to_next(at(9, 29).replace(second=50)) == 10.0


async def test_run_forever_queues_when_the_clock_reaches_the_time(
    bot: Harness, chats: Chats
) -> None:
    import asyncio

    await set_schedule(bot)
    now = [at(9, 29)]
    reads = [0]
    passes = asyncio.Event()

    def clock() -> datetime:
        reads[0] += 1
        if reads[0] >= 6:  # each pass reads the clock twice: three passes at 09:29
            passes.set()
        return now[0]

    scheduler = DailyScheduler(bot.services, bot.runtime, clock=clock, poll_seconds=0.01)
    task = asyncio.create_task(scheduler.run_forever())
    try:
        await asyncio.wait_for(passes.wait(), 10)
        assert scheduler.queued == {}
        now[0] = at(9, 30)
        scheduler.wake()
        while not scheduler.queued:
            passes.clear()
            await asyncio.wait_for(passes.wait(), 10)
    finally:
        scheduler.stop()
        await task
    await bot.runtime.drain()
    assert len(chats.posts) == 1


# ------------------------------------------------------------------ imagebot daily --once


def test_cli_daily_once_archives_the_due_post_and_prints_its_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], settings: Settings
) -> None:
    now = datetime.now(UTC)
    index = Index(settings.db_path)
    DailyStore(index.db).upsert(
        {"platform": "telegram", "chat_id": "5", "time_utc": now.strftime("%H:%M"),
         "provider": "local", "size": "128x128", "count": 1}
    )  # fmt: skip
    index.close()

    assert main(["daily", "--once"]) == 0
    folder = Path(capsys.readouterr().out.strip())
    assert (folder / "info.json").is_file() and folder.is_relative_to(tmp_path / "output")

    assert main(["daily", "--once"]) == 0  # already posted today
    captured = capsys.readouterr()
    assert captured.out == "" and "no daily post is due" in captured.err
