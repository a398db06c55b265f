"""Every declared command through the real discord.py bot and the Discord fake, as a user sees
it: one interaction response each, the answer, and nothing the fake had to refuse."""

from __future__ import annotations

import csv
import io

from tests.discord_harness import Running, answers, posted_batch
from tests.fakes.discord_server import FakeDiscord, InteractionRecord


def refused_requests(fake: FakeDiscord) -> list[tuple[str, str, int]]:
    """REST calls the fake answered with an error (40060 for a double acknowledgement...)."""
    return [(r.method, r.path, r.status) for r in fake.requests if r.status >= 400]


async def say(fake: FakeDiscord, name: str, options: dict | None = None, **kw) -> InteractionRecord:
    return await fake.send_slash_command(name, options or {}, **kw)


async def test_prompts_with_an_instant_worker_acknowledges_once_and_attaches_the_csv(
    fake: FakeDiscord, bot: Running
) -> None:
    record = await say(fake, "prompts", {"count": 3, "theme": "lighthouses"})
    [message] = await fake.wait_for(
        lambda: [m for m in fake.messages_for_interaction(record.id) if m.attachments] or None,
        what="prompts.csv",
    )
    # The offline source answers at once: still one defer, then the file as its followup.
    assert [callback.type for callback in record.callbacks] == [5]
    [attachment] = message.attachments
    assert attachment.filename == "prompts.csv"
    rows = list(csv.DictReader(io.StringIO(attachment.data.decode("utf-8"))))
    assert len(rows) == 3 and all(row["title"] and row["prompt"] for row in rows)
    assert "3 prompt specs" in message.content
    assert refused_requests(fake) == []


async def test_same_prompt_button_renders_the_spec_again(fake: FakeDiscord, bot: Running) -> None:
    record = await say(fake, "generate", {"count": 1, "size": "64x64", "theme": "owls"})
    post = await posted_batch(fake, record, "the batch")
    again = next(i for i in post.custom_ids if i.startswith("ib:again:"))
    click = await fake.click_button(post, again)
    second = await posted_batch(fake, click, "the same prompt again")
    assert second.embeds[0]["title"] == post.embeds[0]["title"]
    assert refused_requests(fake) == []


async def test_queue_and_cancel_answer_privately(fake: FakeDiscord, bot: Running) -> None:
    [queue] = await answers(fake, await say(fake, "queue"), "/queue")
    [cancel] = await answers(fake, await say(fake, "cancel"), "/cancel")
    assert queue.ephemeral and queue.content == "You have no request waiting or running."
    assert cancel.ephemeral and cancel.content == "You have no request to cancel."


async def test_settings_show_set_and_reset(fake: FakeDiscord, bot: Running) -> None:
    refused = await say(fake, "settings set", {"key": "size", "value": "512x512"})
    [no] = await answers(fake, refused, "a member's /settings set")
    assert no.ephemeral and "/settings set is for moderators only" in no.content

    mod = fake.moderator
    [bad] = await answers(
        fake, await say(fake, "settings set", {"key": "count", "value": "99"}, user=mod), "bad"
    )
    assert bad.ephemeral and "a whole number from 1 to 10" in bad.content
    assert "Nothing was changed" in bad.content
    [done] = await answers(
        fake, await say(fake, "settings set", {"key": "size", "value": "64x64"}, user=mod), "set"
    )
    assert done.content == "This chat's size is now 64x64."
    [shown] = await answers(fake, await say(fake, "settings show"), "/settings show")
    assert shown.ephemeral and "• size: 64x64" in shown.content

    # /generate with no size now uses the chat's default.
    record = await say(fake, "generate", {"count": 1})
    post = await posted_batch(fake, record, "a batch at the chat's size")
    from PIL import Image

    with Image.open(io.BytesIO(post.attachments[0].data)) as image:
        assert image.size == (64, 64)

    [reset] = await answers(fake, await say(fake, "settings reset", user=mod), "/settings reset")
    assert reset.content == "All of this chat's settings are back to the bot's default."
    assert refused_requests(fake) == []


async def test_spoiler_setting_posts_spoiler_files(fake: FakeDiscord, bot: Running) -> None:
    mod = fake.moderator
    await answers(
        fake, await say(fake, "settings set", {"key": "spoiler", "value": "on"}, user=mod), "on"
    )
    post = await posted_batch(fake, await say(fake, "generate", {"count": 1, "size": "64x64"}),
                              "a spoiler batch")  # fmt: skip
    assert [a.filename for a in post.attachments] == ["SPOILER_1.png"]


async def test_daily_set_show_off(fake: FakeDiscord, bot: Running) -> None:
    mod = fake.moderator
    [member] = await answers(fake, await say(fake, "daily show"), "a member's /daily show")
    assert member.ephemeral and "/daily show is for moderators only" in member.content
    record = await say(fake, "daily set", {"time": "09:30", "count": 2, "size": "64x64"}, user=mod)
    [set_answer] = await answers(fake, record, "/daily set")
    assert set_answer.content.startswith("Daily post set: every day at 09:30 UTC: 2 images")
    [shown] = await answers(fake, await say(fake, "daily show", user=mod), "/daily show")
    assert shown.ephemeral and "09:30 UTC" in shown.content
    [off] = await answers(fake, await say(fake, "daily off", user=mod), "/daily off")
    assert off.content == "Daily post turned off for this chat."
    assert refused_requests(fake) == []


async def test_user_text_never_pings_anyone_but_the_requester(
    fake: FakeDiscord, bot: Running
) -> None:
    role = fake.guild.id  # any role id: the theme tries @everyone, a role and @here
    theme = f"@everyone <@&{role}> @here harbour"
    prompts = await say(fake, "prompts", {"count": 2, "theme": theme})
    [message] = await fake.wait_for(
        lambda: [m for m in fake.messages_for_interaction(prompts.id) if m.attachments] or None,
        what="prompts.csv",
    )
    assert "@everyone" in message.content  # the titles are shown as written...
    assert message.pings == []  # ...and ping nobody
    generate = await say(fake, "generate", {"count": 1, "size": "64x64", "theme": theme})
    await posted_batch(fake, generate, "the batch")
    assert [m.pings for m in fake.messages.values() if m.pings] == []


async def test_u2_posts_image_two_upscaled_as_a_file(fake: FakeDiscord, bot: Running) -> None:
    record = await say(fake, "generate", {"count": 2, "size": "64x64"})
    post = await posted_batch(fake, record, "the batch")
    u2 = next(i for i in post.custom_ids if i.startswith("ib:upscale:") and i.endswith(":2"))
    click = await fake.click_button(post, u2)
    [answer] = await fake.wait_for(
        lambda: [m for m in fake.messages_for_interaction(click.id) if m.attachments] or None,
        what="the upscaled file",
    )
    [attachment] = answer.attachments
    assert attachment.filename == "2-upscaled.png" and "upscaled to 128x128" in answer.content
    from PIL import Image

    with Image.open(io.BytesIO(attachment.data)) as picture:
        assert picture.size == (128, 128)
    assert refused_requests(fake) == []
