"""`imagebot daily --once` (for cron): due schedules are posted to their chats, then it exits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from imagebot.bot.cli import main
from imagebot.bot.settings import Settings
from imagebot.storage.daily import DailyStore
from imagebot.storage.index import Index
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.telegram_server import FakeTelegram
from tests.fakes.threaded import FakeOnThread

TOKEN = "42:TEST"
GROUP, ADMIN = -1001234567890, 1003


@pytest.fixture(autouse=True)
def not_at_midnight() -> None:
    now = datetime.now(UTC)
    if now.hour == 0 and now.minute < 2:
        pytest.skip("a minute ago is yesterday: the schedule would not be due today")


def schedule_due_now(platform: str, chat_id: str, reply: dict) -> None:
    """A schedule set yesterday for a minute ago today: due, and less than an hour late."""
    now = datetime.now(UTC)
    index = Index(Settings.from_env().db_path)
    DailyStore(index.db).upsert(
        {
            "platform": platform,
            "chat_id": chat_id,
            "time_utc": (now - timedelta(minutes=1)).strftime("%H:%M"),
            "provider": "local",
            "size": "64x64",
            "count": 2,
            "created_by": "1",
            "created_at": (now - timedelta(days=1)).isoformat(),
            "last_run_date": (now - timedelta(days=1)).date().isoformat(),
            "reply": reply,
        }
    )
    index.close()


def test_once_posts_to_telegram_and_not_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    with FakeOnThread(FakeTelegram) as fake:
        fake.send_text(GROUP, ADMIN, "hello")  # the fake knows a chat once it has spoken
        monkeypatch.setenv("TELEGRAM_TOKEN", TOKEN)
        monkeypatch.setenv("TELEGRAM_API_BASE", fake.base_url)
        schedule_due_now("telegram", str(GROUP), {"chat_id": GROUP, "message_id": 1})
        assert main(["daily", "--once"]) == 0
        folder = Path(capsys.readouterr().out.strip())
        albums = [r for r in fake.sent if r.method == "sendMediaGroup" and r.chat_id == GROUP]
        assert main(["daily", "--once"]) == 0  # already posted today
        assert "no daily post is due" in capsys.readouterr().err
        again = [r for r in fake.sent if r.method == "sendMediaGroup"]
    assert len(albums) == 1 and len(albums[0].media) == 2 and albums[0].media[0].caption
    assert sorted(p.name for p in folder.iterdir())[:2] == ["1.png", "2.png"]
    assert len(again) == 1


def test_once_posts_to_a_discord_channel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOnThread(FakeDiscord) as fake:
        monkeypatch.setenv("DISCORD_TOKEN", fake.token)
        monkeypatch.setenv("DISCORD_API_BASE", fake.api_base)
        monkeypatch.setenv("DISCORD_GUILD_IDS", fake.guild.id)
        channel = fake.channel.id
        schedule_due_now(
            "discord",
            channel,
            {"channel_id": channel, "guild_id": fake.guild.id, "user_id": "1", "token": "old"},
        )
        assert main(["daily", "--once"]) == 0
        posted = [m for m in fake.channel_messages if m.channel_id == channel]
    [message] = posted
    assert len(message.attachments) == 2 and message.embeds[0]["title"]
    assert "<@" not in message.content  # a daily post mentions nobody
