"""Every chat command through ChatCommands, answered on a RecordingPort (SPEC §6–7)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from imagebot.commands.chat.help import help_text
from tests.recording_port import (
    Harness,
    RecordingPort,
    StubControls,
    start_harness,
)


@pytest.fixture
def env() -> dict[str, str]:
    return {}


@pytest.fixture
async def bot(tmp_path: Path, stub: StubControls, env: dict[str, str]) -> Harness:
    harness = await start_harness(tmp_path / "output", env)
    yield harness
    await harness.close()


async def generate(bot: Harness, args: dict, **who: object):
    port = await bot.say("generate", args, **who)
    await bot.runtime.drain()
    return port


# ------------------------------------------------------------------ /generate


async def test_generate_posts_the_batch_with_buttons_and_archives_it(bot: Harness) -> None:
    port = await generate(bot, {"count": 2, "size": "256x256", "theme": "a foggy harbour"})

    assert port.methods[0] == "acknowledge"
    assert "Rendering 2/2 …" in [call.text for call in port.of("progress")]
    [post] = port.posts
    assert post.title and post.description and post.tags
    assert post.provider == "local" and post.errors == [] and post.note is None
    assert [b.label for b in post.buttons[0]] == ["🎲 Re-roll", "🔁 Same prompt", "🗑 Delete"]
    assert [b.custom_id for b in post.buttons[0]] == [f"ib:{a}:{post.batch_id}" for a in
                                                   ("reroll", "again", "delete")]  # fmt: skip
    assert len(post.images) == 2
    for image in post.images:
        with Image.open(image) as opened:
            assert opened.size == (256, 256)
    [batch] = bot.batches()
    [job] = bot.jobs()
    assert batch["status"] == "complete" and batch["theme"] == "a foggy harbour"
    assert batch["job_id"] == job["id"] and batch["user_id"] == "1" and batch["chat_id"] == "100"
    assert (job["status"], job["answered"], job["image_count"]) == ("done", 1, 2)
    info = json.loads((Path(batch["folder"]) / "info.json").read_text())
    assert info["requested_by"]["platform"] == "discord"


async def test_generate_with_the_real_offline_renderer_and_templates(tmp_path: Path) -> None:
    bot = await start_harness(tmp_path / "output")
    try:
        port = await generate(bot, {"text": "2 96x64 a lighthouse at dusk"}, platform="telegram")
    finally:
        await bot.close()

    [post] = port.posts
    assert post.provider == "local" and len(post.images) == 2 and post.errors == []
    with Image.open(post.images[1]) as opened:
        assert opened.size == (96, 64)
    assert "lighthouse" in (post.title + post.description).lower()


async def test_telegram_words_are_recognised_by_their_form(bot: Harness) -> None:
    port = await generate(bot, {"text": "2 128x96 horde a foggy harbour"}, platform="telegram")

    [post] = port.posts
    assert post.provider == "horde" and len(post.images) == 2
    with Image.open(post.images[0]) as opened:
        assert opened.size == (128, 96)
    assert bot.batches()[0]["theme"] == "a foggy harbour"


async def test_telegram_defaults_are_four_square_images_of_the_default_provider(
    bot: Harness,
) -> None:
    port = await generate(bot, {"text": "a foggy harbour"}, platform="telegram")

    [post] = port.posts
    assert len(post.images) == 4 and post.provider == "local"
    with Image.open(post.images[0]) as opened:
        assert opened.size == (1024, 1024)


BAD_INPUTS = [
    ({"count": 0}, "count must be a whole number from 1 to 10"),
    ({"count": 11}, "from 1 to 10"),
    ({"count": "many"}, "count must be a whole number"),
    ({"size": "big"}, "is not WxH"),
    ({"size": "32x32"}, "out of range"),
    ({"size": "9000x9000"}, "out of range"),
    ({"provider": "midjourney"}, "unknown provider 'midjourney'"),
    ({"provider": "dalle"}, "not configured: set OPENAI_API_KEY"),
    ({"theme": "x" * 301}, "at most 300"),
    ({"text": "0 cats"}, "from 1 to 10"),
    ({"text": "12 cats"}, "from 1 to 10"),
    ({"text": "4 99999x99999 cats"}, "out of range"),
    ({"text": "4 512x512 cats 256x256"}, "two sizes"),
    ({"text": "stable-diffusion cats"}, "not configured: set STABLE_DIFFUSION_URL"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUTS)
async def test_bad_input_gets_one_private_reply_and_queues_nothing(
    bot: Harness, args: dict, message: str
) -> None:
    port = await bot.say("generate", args)

    assert port.methods == ["text"]
    [call] = port.of("text")
    assert call.private and message.lower() in call.text.lower()
    assert bot.jobs() == [] and bot.batches() == []


@pytest.mark.parametrize("env", [{"IMAGEBOT_BANNED_WORDS": "gore,/blood\\w*/"}])
async def test_a_banned_theme_is_refused(bot: Harness) -> None:
    port = await bot.say("generate", {"theme": "a bloody harbour"})

    assert "banned word or pattern (/blood\\w*/)" in port.texts[0]
    assert bot.jobs() == []


ALLOW = {"IMAGEBOT_ALLOWED_USERS": "5", "IMAGEBOT_ALLOWED_ROLES": "77"}


@pytest.mark.parametrize("env", [ALLOW])
async def test_allow_lists_refuse_unlisted_users_and_admit_listed_roles(bot: Harness) -> None:
    refused = await bot.say("generate", {"count": 1, "size": "64x64"}, user="9", roles=("12",))
    by_role = await generate(bot, {"count": 1, "size": "64x64"}, user="9", roles=("77",))
    by_user = await generate(bot, {"count": 1, "size": "64x64"}, user="5")

    assert refused.methods == ["text"] and refused.of("text")[0].private
    assert "not on this bot's list of allowed users" in refused.texts[0]
    assert len(by_role.posts) == 1 and len(by_user.posts) == 1
    assert len(bot.jobs()) == 2


@pytest.mark.parametrize("env", [{"IMAGEBOT_ALLOWED_CHATS": "-100200"}])
async def test_allowed_chats_refuse_other_chats(bot: Harness) -> None:
    refused = await bot.say("prompts", {"count": 2}, chat="300")
    allowed = await bot.say("prompts", {"count": 2}, chat="-100200", platform="telegram")
    await bot.runtime.drain()

    assert "not enabled in this chat" in refused.texts[0]
    assert [call.name for call in allowed.of("file")] == ["prompts.csv"]


@pytest.mark.parametrize("env", [{"IMAGEBOT_DAILY_QUOTA": "6"}])
async def test_daily_quota_counts_todays_images_and_says_when_it_resets(bot: Harness) -> None:
    bot.runtime.jobs.add(  # yesterday's images no longer count
        {
            "id": "old",
            "kind": "generate",
            "platform": "discord",
            "user_id": "1",
            "image_count": 6,
            "created_at": "2000-01-01T10:00:00Z",
        }  # fmt: skip
    )
    first = await generate(bot, {"count": 4, "size": "64x64"})
    second = await bot.say("generate", {"count": 3, "size": "64x64"})
    other_user = await generate(bot, {"count": 3, "size": "64x64"}, user="2")

    assert len(first.posts) == 1 and len(other_user.posts) == 1
    assert second.methods == ["text"]
    assert "only 2 of your daily 6 are left" in second.texts[0]
    assert "resets at 00:00 UTC" in second.texts[0]
    assert len(bot.jobs()) == 3  # the old one, and the two accepted


class SlowAckPort(RecordingPort):
    """A port whose acknowledge takes a network round trip, as Discord's defer does."""

    async def acknowledge(self, *, private: bool = False) -> None:
        await asyncio.sleep(0.01)
        await super().acknowledge(private=private)


@pytest.mark.parametrize("env", [{"IMAGEBOT_DAILY_QUOTA": "6"}])
async def test_two_quick_requests_cannot_both_pass_the_quota(bot: Harness) -> None:
    first, second = SlowAckPort(), SlowAckPort()
    await asyncio.gather(
        bot.say("generate", {"count": 4, "size": "64x64"}, port=first),
        bot.say("generate", {"count": 4, "size": "64x64"}, port=second),
    )
    await bot.runtime.drain()
    assert first.methods[0] == "acknowledge"
    assert second.methods == ["text"] and "only 2 of your daily 6" in second.texts[0]
    assert len(bot.jobs()) == 1


@pytest.mark.parametrize("env", [{"IMAGEBOT_DAILY_QUOTA": "4"}])
async def test_failed_requests_give_their_images_back(bot: Harness, stub: StubControls) -> None:
    stub.fail_all = True
    failed = await generate(bot, {"count": 4, "size": "64x64"})
    stub.fail_all = False
    again = await generate(bot, {"count": 4, "size": "64x64"})

    assert failed.posts == [] and "No image could be rendered" in failed.texts[0]
    assert len(again.posts) == 1


# ------------------------------------------------------------------ partial failures


async def test_partial_failure_posts_and_archives_what_rendered(
    bot: Harness, stub: StubControls
) -> None:
    stub.fail_calls = {1, 3}
    port = await generate(bot, {"count": 4, "size": "64x64"})

    [post] = port.posts
    assert len(post.images) == 2
    assert post.errors[0] == "2 of 4 images could not be rendered:"
    assert post.errors[1] == "local: the server is overloaded (HTTP 503) (2 images)"
    [batch] = bot.batches()
    assert batch["status"] == "partial" and batch["image_count"] == 2
    assert sorted(p.name for p in Path(batch["folder"]).glob("*.png")) == ["1.png", "2.png"]
    assert bot.jobs()[0]["status"] == "done"


async def test_total_failure_says_which_provider_failed_and_why(
    bot: Harness, stub: StubControls
) -> None:
    stub.fail_all = True
    port = await generate(bot, {"count": 2, "size": "64x64"})

    assert port.posts == []
    [text] = port.texts
    assert "No image could be rendered for" in text
    assert "local: the server is overloaded (HTTP 503) (2 images)" in text
    [job] = bot.jobs()
    assert (job["status"], job["answered"]) == ("failed", 1)
    assert bot.batches()[0]["status"] == "failed"


@pytest.mark.parametrize("env", [{"IMAGEBOT_FALLBACK": "horde"}])
async def test_fallback_is_noted_on_the_post(bot: Harness, stub: StubControls) -> None:
    stub.fail_calls = {0, 1}  # both images of the first provider
    port = await generate(bot, {"count": 2, "size": "64x64"})

    [post] = port.posts
    assert post.provider == "horde" and len(post.images) == 2
    assert post.note == "local was unavailable; rendered with horde instead"


# ------------------------------------------------------------------ buttons


async def test_reroll_makes_a_new_prompt_with_the_same_settings(bot: Harness) -> None:
    first = (await generate(bot, {"count": 2, "size": "128x64", "theme": "harbour"})).posts[0]
    port = await bot.say("button", {"custom_id": f"ib:reroll:{first.batch_id}"}, user="2")
    await bot.runtime.drain()

    [post] = port.posts
    assert post.batch_id != first.batch_id and len(post.images) == 2
    with Image.open(post.images[0]) as opened:
        assert opened.size == (128, 64)
    new = bot.services.index.get_batch(post.batch_id)
    assert new["theme"] == "harbour" and new["user_id"] == "2"


async def test_again_renders_the_same_prompt_with_new_seeds(
    bot: Harness, stub: StubControls
) -> None:
    first = (await generate(bot, {"count": 1, "size": "64x64"})).posts[0]
    port = await bot.say("button", {"custom_id": f"ib:again:{first.batch_id}"})
    await bot.runtime.drain()

    [post] = port.posts
    assert post.title == first.title and post.batch_id != first.batch_id
    old, new = stub.renders
    assert old.prompt == new.prompt and old.seeds != new.seeds


async def test_delete_is_for_the_requester_or_a_moderator(bot: Harness) -> None:
    post = (await generate(bot, {"count": 1, "size": "64x64"})).posts[0]
    button = {"custom_id": f"ib:delete:{post.batch_id}"}

    stranger = await bot.say("button", button, user="2")
    owner = await bot.say("button", button, user="1")
    moderator = await bot.say("button", button, user="3", moderator=True)

    assert "Only the person who asked for this batch or a moderator" in stranger.texts[0]
    assert owner.methods == ["delete_post"] and moderator.methods == ["delete_post"]
    batch = bot.services.index.get_batch(post.batch_id)
    assert batch["deleted_at"] and batch["deleted_by"] == "3"
    assert post.images[0].exists()  # the archive keeps its files


@pytest.mark.parametrize(
    "custom_id",
    ["ib:explode:abc123", "nonsense", "ib:reroll:", "ib:reroll:../../x", "ib:upscale:abc123"],
)
async def test_unknown_buttons_are_refused(bot: Harness, custom_id: str) -> None:
    port = await bot.say("button", {"custom_id": custom_id})
    assert port.texts == ["That button is not one of this bot's; it does nothing"]
    assert bot.jobs() == []


async def test_button_of_a_batch_not_in_the_archive(bot: Harness) -> None:
    port = await bot.say("button", {"custom_id": "ib:reroll:0123456789ab"})
    assert port.texts == ["That batch is no longer in the archive"]


# ------------------------------------------------------------------ other commands


async def test_prompts_attaches_a_csv_with_a_preview(bot: Harness) -> None:
    port = await bot.say("prompts", {"text": "3 lighthouses"}, platform="telegram")
    await bot.runtime.drain()

    [call] = port.of("file")
    assert call.name == "prompts.csv"
    rows = list(csv.DictReader(io.StringIO(call.data.decode("utf-8"))))
    assert len(rows) == 3 and list(rows[0]) == ["title", "description", "metatags", "prompt"]
    assert call.text.startswith("3 prompt specs:")
    assert all(f"• {row['title']}" in call.text for row in rows)


@pytest.mark.parametrize("args", [{"count": 51}, {"count": 0}, {"text": "x cats"}])
async def test_prompts_count_out_of_range(bot: Harness, args: dict) -> None:
    port = await bot.say("prompts", args)
    if "text" in args:  # "x cats" is a theme: the default count applies
        await bot.runtime.drain()
        assert port.of("file")
        return
    assert "from 1 to 50" in port.texts[0] and bot.jobs() == []


async def test_export_gives_moderators_this_chats_archive(bot: Harness) -> None:
    await generate(bot, {"count": 1, "size": "64x64", "theme": "here"})
    await generate(bot, {"count": 1, "size": "64x64", "theme": "elsewhere"}, chat="999")

    refused = await bot.say("export", {})
    port = await bot.say("export", {"days": 7}, moderator=True)

    assert "for moderators only" in refused.texts[0] and refused.of("text")[0].private
    [call] = port.of("file")
    assert call.name == "export.csv" and call.text == "1 batch of this chat from the last 7 days."
    rows = list(csv.DictReader(io.StringIO(call.data.decode("utf-8"))))
    assert len(rows) == 1 and rows[0]["provider"] == "local"


async def test_export_days_must_be_a_number(bot: Harness) -> None:
    port = await bot.say("export", {"text": "lots"}, moderator=True, platform="telegram")
    assert "Days must be a whole number" in port.texts[0]


async def test_daily_is_routed_to_the_schedules(bot: Harness) -> None:
    port = await bot.say("daily", {"text": "set 09:00"}, moderator=True)
    assert "09:00" in port.texts[0]
    refused = await bot.say("daily", {"text": "set 09:00"})
    assert refused.of("text")[0].private and "moderator" in refused.texts[0].lower()


async def test_providers_lists_each_with_its_health(bot: Harness) -> None:
    port = await bot.say("providers")
    text = port.texts[0]
    assert "[ok] local (default)" in text
    assert "offline, no network needed" in text


async def test_queue_and_cancel_with_nothing_waiting(bot: Harness) -> None:
    assert (await bot.say("queue")).texts == ["You have no request waiting or running."]
    assert (await bot.say("cancel")).texts == ["You have no request to cancel."]


@pytest.mark.parametrize("platform", ["discord", "telegram"])
async def test_help_names_every_command(bot: Harness, platform: str) -> None:
    text = (await bot.say("help", platform=platform)).texts[0]
    for command in ("/generate", "/prompts", "/export", "/daily", "/queue", "/cancel",
                    "/providers", "/help"):  # fmt: skip
        assert command in text
    example = "count:4 size:512x512" if platform == "discord" else "/generate 4 512x512"
    assert example in text
    assert text == help_text(bot.services.config, platform)


async def test_unknown_command(bot: Harness) -> None:
    port = await bot.say("dance")
    assert port.texts == ["Unknown command /dance; see /help"]
