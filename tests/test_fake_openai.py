"""The OpenAI fake enforces the real limits and error shapes the providers are tested against."""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai
import pytest

from tests.fakes.openai_server import FakeOpenAI

KEY = "sk-fake-check-123456"


@pytest.fixture
async def client() -> AsyncIterator[tuple[FakeOpenAI, openai.AsyncOpenAI]]:
    async with FakeOpenAI(api_key=KEY) as fake:
        sdk = openai.AsyncOpenAI(api_key=KEY, base_url=fake.base_url, max_retries=0)
        yield fake, sdk
        await sdk.close()


@pytest.mark.parametrize(
    ("params", "param", "message"),
    [
        ({"model": "dall-e-3", "n": 2}, "n", "You must provide n=1 for this model."),
        ({"model": "dall-e-3", "size": "512x512"}, "size", "Invalid value: '512x512'"),
        ({"model": "dall-e-2", "n": 11}, "n", "Invalid 'n'"),
        ({"model": "gpt-image-1", "response_format": "b64_json"}, "response_format", "Unknown"),
        ({"model": "dall-e-9"}, "model", "does not exist"),
    ],
)
async def test_image_limits_answer_400_in_the_real_shape(client, params, param, message) -> None:
    _, sdk = client
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.images.generate(prompt="a cat", **params)
    assert caught.value.param == param and message in caught.value.message
    assert caught.value.type == "invalid_request_error"


async def test_dall_e_answers_a_url_by_default(client) -> None:
    fake, sdk = client
    answer = await sdk.images.generate(model="dall-e-2", prompt="a cat", size="256x256")
    assert answer.data[0].url.startswith(fake.root_url + "/files/")


async def test_chat_usage_and_a_spec_per_brief(client) -> None:
    fake, sdk = client
    completion = await sdk.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {
                "role": "user",
                "content": "Write 2 prompt specs as JSON.\nBrief 1: scene: a fox\n"
                "Brief 2: scene: a swan",
            }
        ],
        response_format={"type": "json_object"},
    )
    assert '"A fox."' in completion.choices[0].message.content
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )


async def test_json_object_needs_the_word_json(client) -> None:
    _, sdk = client
    with pytest.raises(openai.BadRequestError, match="must contain the word 'json'"):
        await sdk.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "hello"}],
            response_format={"type": "json_object"},
        )


async def test_log_keeps_bodies_but_never_the_key(client) -> None:
    fake, sdk = client
    await sdk.models.list()
    [logged] = fake.requests
    assert logged.path == "/v1/models" and logged.authorized
    assert KEY not in str(logged.headers)
