"""The gpt prompt source through the real openai SDK against the loopback fake."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from imagebot.bot.settings import Settings
from imagebot.providers import roles
from imagebot.providers.base import (
    BadResponse,
    NeedsKey,
    PromptRequest,
    Refused,
    Unavailable,
    UsageError,
)
from imagebot.providers.gpt import GptSource
from tests.fakes.openai_server import FakeOpenAI, Refusal

KEY = "sk-test-7f3a9c1d2e4b5a6f"

PAINTER = """
name = "Test painter"
summary = "Oil paintings of quiet places."
prefix = "oil painting"
suffix = "canvas texture"
negative_prompt = "blurry, text"
scenes = ["a {misty|sunlit} lighthouse on a cliff", "a portrait of ${subject} by a window"]
authors = ["Vilhelm Hammershoi", "Edward Hopper"]
styles = ["impasto", "muted palette"]
elements = ["gulls", "long shadows", "a red door", "rain"]
tags = ["painting", "oil"]
[settings]
steps = 28
cfg_scale = 6.5
"""
CHEF = """
name = "Test chef"
summary = "Food photography."
prefix = "food photo"
scenes = ["a bowl of {ramen|pho} on a wooden table"]
styles = ["overhead shot"]
tags = ["food"]
elements = ["steam", "chopsticks"]
"""
EXAMPLE = {
    "theme": "lighthouse",
    "picks": {"scene": "a lighthouse in a winter storm", "style": "impasto"},
    "answer": {
        "title": "Keeper of the Gale",
        "description": "A white lighthouse braced against a winter storm, waves in thick paint.",
        "metatags": ["lighthouse", "storm", "sea", "oil painting", "winter"],
    },
}


@pytest.fixture
def packs(tmp_path: Path) -> tuple[Path, Path]:
    data, tuning = tmp_path / "data", tmp_path / "tuning"
    (data / "roles").mkdir(parents=True)
    (data / "wildcards").mkdir()
    tuning.mkdir()
    (data / "roles" / "test-painter.toml").write_text(PAINTER)
    (data / "roles" / "test-chef.toml").write_text(CHEF)
    (tuning / "test-painter.jsonl").write_text(json.dumps(EXAMPLE) + "\n")
    return data, tuning


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(api_key=KEY) as server:
        yield server


def make_source(fake: FakeOpenAI, packs: tuple[Path, Path], **kwargs) -> GptSource:
    options = {"timeout": 5.0, "max_retries": 2, **kwargs}
    return GptSource(
        model="gpt-4o-mini",
        api_key=options.pop("api_key", KEY),
        base_url=fake.base_url,
        data_dir=packs[0],
        tuning_dir=packs[1],
        **options,
    )


@pytest.fixture
async def source(fake: FakeOpenAI, packs: tuple[Path, Path]) -> AsyncIterator[GptSource]:
    src = make_source(fake, packs)
    yield src
    await src.aclose()


def last_user(logged) -> str:
    return [m for m in logged.json["messages"] if m["role"] == "user"][-1]["content"]


async def test_spec_json_lands_in_the_spec(fake: FakeOpenAI, source: GptSource) -> None:
    fake.queue_reply(
        {
            "specs": [
                {
                    "title": "  Harbour   at dawn  " + "x" * 100,
                    "description": "  Fishing boats rest in a misty harbour.  ",
                    "metatags": ["#Fog", "fog", "Boats", "sea", " dawn ", "mist", "#calm"]
                    + [f"tag{i}" for i in range(10)],
                }
            ]
        }
    )
    [spec] = await source.generate(PromptRequest(count=1, role="test-painter", theme="harbour"))
    assert spec.title.startswith("Harbour at dawn") and len(spec.title) <= 80
    assert spec.description == "Fishing boats rest in a misty harbour."
    assert spec.metatags[:6] == ["fog", "boats", "sea", "dawn", "mist", "calm"]
    assert len(spec.metatags) == 12
    role = roles.get_role("test-painter", source._data_dir)
    composed = roles.compose_prompt(role, spec.description, spec.metatags, spec.picks["style"])
    assert spec.prompt == composed and "canvas texture" in spec.prompt
    assert (spec.prompt_source, spec.prompt_model, spec.role) == (
        "gpt",
        "gpt-4o-mini",
        "test-painter",
    )
    assert spec.picks["role"] == "test-painter" and spec.theme == "harbour"
    assert spec.negative_prompt == "blurry, text" and spec.settings["steps"] == 28
    request = fake.chat_requests[0].json
    assert request["response_format"]["type"] == "json_schema"
    assert request["response_format"]["json_schema"]["strict"] is True


async def test_few_shot_examples_are_sent_as_turns(fake: FakeOpenAI, source: GptSource) -> None:
    await source.generate(PromptRequest(count=1, role="test-painter"))
    messages = fake.chat_requests[0].json["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert "a lighthouse in a winter storm" in messages[1]["content"]
    assert json.loads(messages[2]["content"])["specs"][0]["title"] == "Keeper of the Gale"


async def test_role_picks_steer_the_user_message(fake: FakeOpenAI, source: GptSource) -> None:
    [spec] = await source.generate(PromptRequest(count=1, role="test-painter", theme="an old cat"))
    text = last_user(fake.chat_requests[0])
    assert "Test painter" in text and "an old cat" in text
    for key in ("scene", "author", "style"):
        assert spec.picks[key] and spec.picks[key] in text
    assert all(element in text for element in spec.picks["elements"])


async def test_forty_specs_take_eight_concurrent_calls(
    fake: FakeOpenAI, packs: tuple[Path, Path]
) -> None:
    fake.chat_latency = 0.2
    source = make_source(fake, packs)
    specs = await source.generate(PromptRequest(count=40, seed=7))
    await source.aclose()
    assert len(specs) == 40 and len(fake.chat_requests) == 8
    assert all(last_user(r).count("\nBrief ") == 5 for r in fake.chat_requests)
    assert fake.max_in_flight == 8  # every call was in flight at once
    assert {s.role for s in specs} == {"test-painter", "test-chef"}
    assert source.usage.calls == 8 and source.usage.specs == 40


async def test_batching_costs_fewer_prompt_tokens_per_spec(
    fake: FakeOpenAI, packs: tuple[Path, Path]
) -> None:
    batched, single = make_source(fake, packs), make_source(fake, packs, specs_per_call=1)
    await batched.generate(PromptRequest(count=10, role="test-painter", seed=1))
    await single.generate(PromptRequest(count=10, role="test-painter", seed=1))
    assert len(fake.chat_requests) == 2 + 10
    assert batched.usage.prompt_tokens_per_spec < single.usage.prompt_tokens_per_spec
    await batched.aclose()
    await single.aclose()


async def test_json_schema_rejected_falls_back_and_remembers(
    fake: FakeOpenAI, source: GptSource
) -> None:
    fake.reject_json_schema = True
    [spec] = await source.generate(PromptRequest(count=1, role="test-chef"))
    await source.generate(PromptRequest(count=1, role="test-chef"))
    formats = [(r.json.get("response_format") or {}).get("type") for r in fake.chat_requests]
    assert formats == ["json_schema", "json_object", "json_object"]
    assert source.output_mode == "json_object" and spec.title


async def test_plain_text_server_answer_is_read_from_a_fence(
    fake: FakeOpenAI, source: GptSource
) -> None:
    fake.reject_json_object = True
    specs = await source.generate(PromptRequest(count=3, role="test-chef"))
    assert len(specs) == 3 and source.output_mode == "text"
    assert "response_format" not in fake.chat_requests[-1].json


async def test_malformed_answer_is_repaired_once(fake: FakeOpenAI, source: GptSource) -> None:
    fake.queue_reply('{"specs": [{"title": "Broken"')
    specs = await source.generate(PromptRequest(count=2, role="test-chef"))
    assert len(specs) == 2 and len(fake.chat_requests) == 2
    messages = fake.chat_requests[1].json["messages"]
    assert messages[-2] == {"role": "assistant", "content": '{"specs": [{"title": "Broken"'}
    assert "not valid JSON" in messages[-1]["content"] and "2 specs" in messages[-1]["content"]


async def test_malformed_twice_is_a_clear_bad_response(fake: FakeOpenAI, source: GptSource) -> None:
    fake.queue_reply("I cannot do JSON today.", {"specs": [{"title": "No tags"}]})
    with pytest.raises(BadResponse) as caught:
        await source.generate(PromptRequest(count=1, role="test-chef"))
    message = str(caught.value)
    assert message.startswith("gpt: the model gpt-4o-mini gave no usable answer")
    assert "description must be a non-empty string" in message
    assert len(fake.chat_requests) == 2


async def test_thinking_and_chatter_around_the_json_are_ignored(
    fake: FakeOpenAI, source: GptSource
) -> None:
    spec = {"title": "Fox", "description": "A red fox in snow.", "metatags": list("abcdef")}
    fake.queue_reply(f"<think>{{maybe}}</think>Here you go: {json.dumps([spec])} Bye!")
    [got] = await source.generate(PromptRequest(count=1, role="test-chef"))
    assert (got.title, got.metatags) == ("Fox", list("abcdef"))
    assert len(fake.chat_requests) == 1


async def test_too_few_tags_is_repaired(fake: FakeOpenAI, source: GptSource) -> None:
    fake.queue_reply({"specs": [{"title": "T", "description": "D", "metatags": ["a", "A", "#a"]}]})
    [spec] = await source.generate(PromptRequest(count=1, role="test-chef"))
    assert len(spec.metatags) >= 5
    assert "got 1" in last_user(fake.chat_requests[1])


async def test_rate_limit_with_retry_after_then_success(
    fake: FakeOpenAI, source: GptSource
) -> None:
    fake.fail_next("429", retry_after=0.01)
    specs = await source.generate(PromptRequest(count=1, role="test-chef"))
    assert len(specs) == 1 and len(fake.chat_requests) == 2


async def test_server_error_then_success(fake: FakeOpenAI, source: GptSource) -> None:
    fake.fail_next("500", retry_after=0.01)
    assert len(await source.generate(PromptRequest(count=1, role="test-chef"))) == 1


async def test_rate_limit_that_persists_is_unavailable(fake: FakeOpenAI, source: GptSource) -> None:
    fake.fail_next("429", times=3, retry_after=0.01)
    with pytest.raises(Unavailable, match="HTTP 429"):
        await source.generate(PromptRequest(count=1, role="test-chef"))
    assert len(fake.chat_requests) == 3  # the first try and the SDK's two retries


async def test_time_out_is_unavailable(fake: FakeOpenAI, packs: tuple[Path, Path]) -> None:
    fake.fail_next("hang", times=2)
    source = make_source(fake, packs, timeout=0.3, max_retries=1)
    with pytest.raises(Unavailable, match="did not answer in time"):
        await source.generate(PromptRequest(count=1, role="test-chef"))
    await source.aclose()


async def test_model_refusal_is_refused(fake: FakeOpenAI, source: GptSource) -> None:
    fake.queue_reply(Refusal("I can't help with that."))
    with pytest.raises(Refused, match="I can't help with that"):
        await source.generate(PromptRequest(count=1, role="test-chef"))


async def test_content_policy_error_is_refused(fake: FakeOpenAI, source: GptSource) -> None:
    fake.fail_next("policy")
    with pytest.raises(Refused, match="safety system"):
        await source.generate(PromptRequest(count=1, role="test-chef"))
    assert len(fake.chat_requests) == 1  # not mistaken for a response_format rejection


async def test_wrong_key_names_the_variable_and_never_shows_the_key(
    fake: FakeOpenAI, packs: tuple[Path, Path]
) -> None:
    wrong = "sk-wrong-0123456789abcdef"
    source = make_source(fake, packs, api_key=wrong)
    with pytest.raises(NeedsKey) as caught:
        await source.generate(PromptRequest(count=1, role="test-chef"))
    await source.aclose()
    assert "OPENAI_API_KEY" in str(caught.value)
    assert wrong not in str(caught.value) and wrong not in repr(caught.value)
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    assert len(fake.chat_requests) == 1  # a refused key is not retried


async def test_unreadable_http_body_is_a_bad_response(fake: FakeOpenAI, source: GptSource) -> None:
    fake.fail_next("malformed")
    with pytest.raises(BadResponse):
        await source.generate(PromptRequest(count=1, role="test-chef"))


async def test_unknown_role_is_a_usage_error(source: GptSource, fake: FakeOpenAI) -> None:
    with pytest.raises(UsageError, match="test-chef, test-painter"):
        await source.generate(PromptRequest(count=1, role="sculptor"))
    assert fake.requests == []


async def test_soften_rewrites_the_description_only(fake: FakeOpenAI, source: GptSource) -> None:
    [spec] = await source.generate(PromptRequest(count=1, role="test-painter"))
    fake.queue_reply(
        {"description": "A calm garden at dusk.", "metatags": ["garden", "dusk", "calm", "a", "b"]}
    )
    softer = await source.soften(spec, "content_policy_violation")
    assert (softer.title, softer.role) == (spec.title, spec.role)
    assert softer.description == "A calm garden at dusk."
    role = roles.get_role("test-painter", source._data_dir)
    composed = roles.compose_prompt(role, softer.description, softer.metatags, spec.picks["style"])
    assert softer.prompt == composed and "garden" in softer.prompt
    assert softer.picks["softened"] == "content_policy_violation"
    sent = last_user(fake.chat_requests[-1])
    assert spec.description in sent and "content_policy_violation" in sent


async def test_base_url_alone_is_enough(fake: FakeOpenAI, packs: tuple[Path, Path]) -> None:
    fake.api_key = None
    settings = Settings.from_env(
        {"OPENAI_BASE_URL": fake.base_url, "IMAGEBOT_CHAT_MODEL": "llama3"}
    )
    source = GptSource.from_options(settings.provider_options)
    source._data_dir, source._tuning_dir = packs  # the test's role packs
    [spec] = await source.generate(PromptRequest(count=1, role="test-chef"))
    await source.aclose()
    assert spec.prompt_model == "llama3" and fake.chat_requests[0].json["model"] == "llama3"


async def test_real_role_packs(fake: FakeOpenAI) -> None:
    ids = roles.role_ids()
    source = GptSource(model="gpt-4o-mini", api_key=KEY, base_url=fake.base_url)
    specs = await source.generate(PromptRequest(count=3, seed=3))
    await source.aclose()
    assert len(specs) == 3 and all(spec.role in ids for spec in specs)
