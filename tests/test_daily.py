"""/daily (set, off, show) and the daily scheduler, offline: templates + the local renderer."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from imagebot.bot.cli import main
from imagebot.bot.daily import DailyScheduler, next_role, port_poster
from imagebot.bot.settings import Settings
from imagebot.commands.daily import handle_daily, parse_daily
from imagebot.commands.generate import BatchResult
from imagebot.commands.invocation import Invocation
from imagebot.commands.requester import Requester
from imagebot.commands.services import Services
from imagebot.providers.base import UsageError
from imagebot.providers.roles import role_ids
from imagebot.storage.daily import DailyStore
from imagebot.storage.index import Index
from tests.recording_port import RecordingPort

MORNING = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # before the 09:30 schedules below


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    env = {"IMAGEBOT_OUTPUT_DIR": str(tmp_path / "output"), "HORDE_API_KEY": "0000000000"}
    return Settings.from_env(env, dotenv_path=None)


@pytest.fixture
async def services(settings: Settings):
    services = Services(settings)
    yield services
    await services.aclose()


def say(args: dict[str, Any], *, moderator: bool = True, chat: str = "100") -> Invocation:
    who = Requester("telegram", user_id="7", user_name="mod", chat_id=chat)
    return Invocation(who, "daily", args, is_moderator=moderator, reply={"chat": chat})


async def daily(services: Services, text: str, now: datetime = MORNING, **kw: Any) -> RecordingPort:
    port = RecordingPort()
    await handle_daily(services, say({"text": text}, **kw), port, now=now)
    return port


def schedules(services: Services) -> list[dict[str, Any]]:
    return DailyStore(services.index.db).all()


class Recorder:
    """The scheduler's `post`: remembers every (schedule, outcome) it was handed."""

    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, Any], BatchResult | Exception]] = []

    async def __call__(self, row: dict[str, Any], outcome: BatchResult | Exception) -> None:
        self.posts.append((row, outcome))


async def set_schedule(services: Services, text: str = "set 09:30 local 128x128 1") -> None:
    port = await daily(services, text)
    assert port.texts[0].startswith("Daily post set"), port.texts


# ------------------------------------------------------------------ parsing and validation


def test_parse_every_form(settings: Settings) -> None:
    words = parse_daily("set 9:30 local 512x256 3", settings)
    assert (words.action, words.time_utc, words.provider, words.size, words.count) == (
        "set", "09:30", "local", "512x256", 3,
    )  # fmt: skip
    reordered = parse_daily({"text": "set 23:59 2 128x128"}, settings)
    assert (reordered.time_utc, reordered.count, reordered.size) == ("23:59", 2, "128x128")
    defaults = parse_daily({"action": "set", "time": "00:00"}, settings)
    assert (defaults.provider, defaults.size, defaults.count) == ("local", "1024x1024", 4)
    named = parse_daily(
        {"action": "set", "time": "07:05", "provider": "horde", "size": "512x512", "count": 10},
        settings,
    )
    assert (named.provider, named.count) == ("horde", 10)
    assert parse_daily("off", settings).action == "off"
    assert parse_daily({"action": "show"}, settings).action == "show"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("set 25:00", "time '25:00' is not a time of day"),
        ("set 9am", "time '9am' is not a time of day"),
        ("set 12:60", "00:00 to 23:59"),
        ("set", "needs a time"),
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
    services: Services, text: str, says: str
) -> None:
    port = await daily(services, text)

    [call] = port.calls
    assert call.method == "text" and call.private
    assert says.lower() in call.text.lower() and "Nothing was changed" in call.text
    assert schedules(services) == []


def test_parse_daily_raises_usage_error_on_bad_size(settings: Settings) -> None:
    with pytest.raises(UsageError, match="out of range"):
        parse_daily({"action": "set", "time": "09:30", "size": "9000x9000"}, settings)


async def test_non_moderator_is_refused_and_nothing_stored(services: Services) -> None:
    port = await daily(services, "set 09:30", moderator=False)
    shown = await daily(services, "show", moderator=False)

    for answer in (port, shown):
        [call] = answer.calls
        assert call.private and "Only moderators" in call.text
    assert schedules(services) == []


async def test_set_show_off_round_trip(services: Services) -> None:
    set_port = await daily(services, "set 09:30 local 512x512 2")
    show_port = await daily(services, "show")
    off_port = await daily(services, "off")
    again = await daily(services, "off")
    empty = await daily(services, "show")

    expected = "every day at 09:30 UTC: 2 images of 512x512 with local; next post today at 09:30"
    assert set_port.texts == [f"Daily post set: {expected} UTC."]
    assert not set_port.of("text")[0].private
    assert show_port.texts == [f"Daily post: {expected} UTC."]
    assert off_port.texts == ["Daily post turned off for this chat."]
    assert "no daily post" in again.texts[0] and "No daily post is set" in empty.texts[0]
    assert schedules(services) == []


async def test_set_replaces_the_chats_schedule_and_a_passed_time_starts_tomorrow(
    services: Services,
) -> None:
    await set_schedule(services)
    port = await daily(services, "set 07:00", now=MORNING)

    [row] = schedules(services)
    assert (row["id"], row["time_utc"], row["count"], row["size"]) == (
        "telegram:100", "07:00", 4, "1024x1024",
    )  # fmt: skip
    assert row["reply"] == {"chat": "100"} and row["created_by"] == "7"
    assert "next post tomorrow at 07:00 UTC" in port.texts[0]


# ------------------------------------------------------------------ the scheduler


def at(hour: int, minute: int = 0, day: int = 0) -> datetime:
    return MORNING.replace(hour=hour, minute=minute) + timedelta(days=day)


async def test_fires_once_at_its_time_with_a_real_archived_batch(services: Services) -> None:
    await set_schedule(services)
    post = Recorder()
    scheduler = DailyScheduler(services, post, clock=lambda: at(9, 29))

    assert await scheduler.run_due() == []  # one minute early
    assert await scheduler.run_due(at(9, 30)) == ["telegram:100"]
    assert await scheduler.run_due(at(9, 45)) == []  # the same day again

    [(row, result)] = post.posts
    assert row["chat_id"] == "100" and isinstance(result, BatchResult)
    assert result.status == "complete" and result.folder is not None
    assert result.folder.is_relative_to(services.settings.output_dir)
    [image] = result.image_paths
    with Image.open(image) as opened:
        assert opened.size == (128, 128)
    info = json.loads((result.folder / "info.json").read_text())
    assert info["role"] in role_ids() and info["requested_by"]["chat_id"] == "100"
    [stored] = schedules(services)
    assert stored["last_run_date"] == "2026-03-02" and stored["last_role"] == info["role"]


async def test_a_restarted_scheduler_does_not_post_twice_and_next_day_fires_again(
    services: Services, settings: Settings
) -> None:
    await set_schedule(services)
    first = Recorder()
    assert await DailyScheduler(services, first).run_due(at(9, 31)) == ["telegram:100"]

    restarted_services = Services(settings)  # a new process: new objects, the same index
    try:
        second = Recorder()
        restarted = DailyScheduler(restarted_services, second)
        assert await restarted.run_due(at(9, 40)) == []
        assert await restarted.run_due(at(23, 59)) == []
        assert await restarted.run_due(at(9, 29, day=1)) == []
        assert await restarted.run_due(at(9, 30, day=1)) == ["telegram:100"]
    finally:
        await restarted_services.aclose()
    assert len(first.posts) == 1 and len(second.posts) == 1
    [(_, day_one)] = first.posts
    [(_, day_two)] = second.posts
    assert isinstance(day_one, BatchResult) and isinstance(day_two, BatchResult)
    assert day_one.spec.role != day_two.spec.role  # the theme rotates
    [stored] = schedules(services)
    assert stored["last_run_date"] == "2026-03-03" and stored["last_role"] == day_two.spec.role


async def test_start_30_minutes_late_posts_once_but_2_hours_late_skips_the_day(
    services: Services,
) -> None:
    await set_schedule(services)
    post = Recorder()
    scheduler = DailyScheduler(services, post)

    assert await scheduler.run_due(at(10, 0)) == ["telegram:100"]
    assert await scheduler.run_due(at(10, 1)) == []
    assert await scheduler.run_due(at(11, 30, day=1)) == []  # down all morning: skipped
    assert await scheduler.run_due(at(12, 0, day=1)) == []
    [stored] = schedules(services)
    assert stored["last_run_date"] == "2026-03-03"  # marked, so it never doubles
    assert await scheduler.run_due(at(9, 30, day=2)) == ["telegram:100"]
    assert len(post.posts) == 2


async def test_a_crash_after_claiming_never_posts_that_day_again(services: Services) -> None:
    await set_schedule(services)

    async def crash(row: dict[str, Any], outcome: Any) -> None:
        raise RuntimeError("the bot died while posting")

    assert await DailyScheduler(services, crash).run_due(at(9, 30)) == ["telegram:100"]
    post = Recorder()
    assert await DailyScheduler(services, post).run_due(at(9, 35)) == []
    assert post.posts == []


def test_the_role_rotation_never_repeats_a_role_two_days_running() -> None:
    roles = role_ids()
    assert len(roles) >= 2
    role = None
    for _ in range(len(roles) * 2):
        following = next_role(roles, role)
        assert following in roles and following != role
        role = following
    assert next_role(["only"], "only") == "only"


async def test_a_provider_gone_missing_is_told_to_the_chat(services: Services) -> None:
    store = DailyStore(services.index.db)
    store.upsert(
        {"platform": "telegram", "chat_id": "100", "time_utc": "09:30", "provider": "dalle",
         "size": "128x128", "count": 1, "reply": {"chat": "100"}}
    )  # fmt: skip
    ports: list[RecordingPort] = []

    def factory(reply: dict) -> RecordingPort:
        ports.append(RecordingPort(reply=reply))
        return ports[-1]

    scheduler = DailyScheduler(services, port_poster(services, {"telegram": factory}))
    assert await scheduler.run_due(at(9, 30)) == ["telegram:100"]

    [port] = ports
    [text] = port.texts
    assert text.startswith("Today's daily post could not be made: provider 'dalle'")
    assert port.reply["scheduled"] is True and port.reply["chat"] == "100"


async def test_port_poster_posts_the_batch_with_buttons(services: Services) -> None:
    await set_schedule(services, "set 09:30 local 128x128 2")
    ports: list[RecordingPort] = []

    def factory(reply: dict) -> RecordingPort:
        ports.append(RecordingPort(reply=reply))
        return ports[-1]

    scheduler = DailyScheduler(services, port_poster(services, {"telegram": factory}))
    await scheduler.run_due(at(9, 30))

    [port] = ports
    [post] = port.posts
    assert len(post.images) == 2 and all(path.is_file() for path in post.images)
    assert [button.action for button in post.buttons] == ["reroll", "again", "delete"]
    assert port.reply == {"chat": "100", "scheduled": True, "platform": "telegram",
                          "chat_id": "100", "guild_id": None}  # fmt: skip


def test_seconds_to_next_wakes_at_the_next_time_or_every_30_seconds(
    services: Services,
) -> None:
    scheduler = DailyScheduler(services, Recorder())
    assert scheduler.seconds_to_next(at(9, 0)) == 30.0  # nothing scheduled
    DailyStore(services.index.db).upsert(
        {"platform": "telegram", "chat_id": "1", "time_utc": "09:30", "provider": "local",
         "size": "128x128", "count": 1}
    )  # fmt: skip
    assert scheduler.seconds_to_next(at(9, 0)) == 30.0  # half an hour away: poll meanwhile
    assert scheduler.seconds_to_next(at(9, 29).replace(second=50)) == 10.0


async def test_run_forever_posts_when_the_clock_reaches_the_time(services: Services) -> None:
    import asyncio

    await set_schedule(services)
    now = [at(9, 29)]
    done = asyncio.Event()
    post = Recorder()

    async def record(row: dict[str, Any], outcome: Any) -> None:
        await post(row, outcome)
        done.set()

    scheduler = DailyScheduler(services, record, clock=lambda: now[0], poll_seconds=0.01)
    task = asyncio.create_task(scheduler.run_forever())
    await asyncio.sleep(0.05)
    assert post.posts == []
    now[0] = at(9, 30)
    await asyncio.wait_for(done.wait(), timeout=30)
    scheduler.stop()
    await task
    assert len(post.posts) == 1


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
