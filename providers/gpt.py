"""The `gpt` prompt source: prompt specs from any OpenAI-compatible chat API."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import openai

from imagebot.providers import gpt_schema as schema
from imagebot.providers import roles
from imagebot.providers.base import (
    BadResponse,
    ConfigError,
    PromptRequest,
    PromptSpec,
    ProviderError,
    Refused,
    UsageError,
)
from imagebot.providers.openai_sdk import error_for_openai, make_client

if TYPE_CHECKING:
    from imagebot.providers.catalog import ProviderOptions

T = TypeVar("T")
SOURCE = "gpt"
# Best first; a server that rejects one is asked with the next, and remembered.
OUTPUT_MODES = ("json_schema", "json_object", "text")
FORMAT_WORDS = ("response_format", "json_schema", "json_object", "structured output", "schema")


@dataclass
class TokenUsage:
    """What the chat calls cost so far, as the server reported it."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    specs: int = 0

    @property
    def prompt_tokens_per_spec(self) -> float:
        return self.prompt_tokens / self.specs if self.specs else 0.0


class GptSource:
    """Prompt specs written by a chat model, steered by role picks and few-shot examples."""

    source_id: ClassVar[str] = SOURCE

    def __init__(
        self,
        *,
        model: str,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 2,
        specs_per_call: int = 5,
        max_parallel_calls: int = 8,
        examples_per_call: int = 3,
        data_dir: Path | None = None,
        tuning_dir: Path | None = None,
    ):
        self._client = make_client(
            SOURCE, api_key, base_url, timeout=timeout, max_retries=max_retries
        )
        self._model = model
        self._key = api_key
        self._specs_per_call = max(1, specs_per_call)
        self._parallel = asyncio.Semaphore(max(1, max_parallel_calls))
        self._examples_per_call = max(0, examples_per_call)
        self._data_dir = data_dir or roles.DATA_DIR
        self._tuning_dir = tuning_dir or roles.TUNING_DIR
        self._mode_index = 0
        self.usage = TokenUsage()

    @classmethod
    def from_options(cls, options: ProviderOptions) -> GptSource:
        """A source for OPENAI_API_KEY / OPENAI_BASE_URL and IMAGEBOT_CHAT_MODEL."""
        return cls(
            model=options.chat_model,
            api_key=options.openai_api_key,
            base_url=options.openai_base_url,
        )

    @property
    def model(self) -> str:
        return self._model

    @property
    def output_mode(self) -> str:
        """How answers are constrained now: json_schema, json_object or text."""
        return OUTPUT_MODES[self._mode_index]

    # ------------------------------------------------------------------ generate

    async def generate(self, request: PromptRequest) -> list[PromptSpec]:
        """`request.count` specs, several per call, the calls run concurrently."""
        if request.count < 1:
            raise UsageError(f"count must be at least 1, got {request.count}")
        rng = random.Random(request.seed)
        fixed = roles.get_role(request.role, self._data_dir) if request.role else None
        all_roles = roles.load_roles(self._data_dir)
        choices = sorted(all_roles)
        items = []
        for _ in range(request.count):
            role = fixed or all_roles[rng.choice(choices)]
            items.append((role, roles.pick(role, rng, request.theme, self._data_dir)))
        chunks = [
            items[start : start + self._specs_per_call]
            for start in range(0, len(items), self._specs_per_call)
        ]
        # Messages are built before any call starts so a seed gives the same requests.
        jobs = [(chunk, self._messages(chunk, request.theme, rng)) for chunk in chunks]
        answers = await _all([self._limited(self._ask_specs(msgs, len(c))) for c, msgs in jobs])
        specs = []
        for (chunk, _), answer in zip(jobs, answers, strict=True):
            specs += [
                self._spec(r, p, a, request.theme) for (r, p), a in zip(chunk, answer, strict=True)
            ]
        self.usage.specs += len(specs)
        return specs

    def _messages(
        self, chunk: list[tuple[roles.Role, dict]], theme: str | None, rng: random.Random
    ) -> list[dict[str, str]]:
        messages = [{"role": "system", "content": schema.SYSTEM_PROMPT}]
        for role, example in self._pick_examples([r for r, _ in chunk], rng):
            messages += schema.example_turns(role, example)
        briefs = [schema.brief(role, picks, theme) for role, picks in chunk]
        messages.append({"role": "user", "content": schema.request_message(briefs)})
        return messages

    def _pick_examples(
        self, chunk_roles: list[roles.Role], rng: random.Random
    ) -> list[tuple[roles.Role, dict]]:
        """Up to examples_per_call examples, taken in turn from the roles of this call."""
        pools: dict[str, tuple[roles.Role, list[dict]]] = {}
        for role in chunk_roles:
            if role.id not in pools:
                examples = list(roles.load_examples(role.id, self._tuning_dir))
                rng.shuffle(examples)
                pools[role.id] = (role, examples)
        chosen: list[tuple[roles.Role, dict]] = []
        while len(chosen) < self._examples_per_call and any(ex for _, ex in pools.values()):
            for role, examples in pools.values():
                if examples and len(chosen) < self._examples_per_call:
                    chosen.append((role, examples.pop()))
        return chosen

    def _spec(self, role: roles.Role, picks: dict, answer: dict, theme: str | None) -> PromptSpec:
        prompt = roles.compose_prompt(
            role,
            answer["description"],
            answer["metatags"],
            picks.get("style", ""),
            picks.get("render_type", ""),
        )
        return PromptSpec(
            title=answer["title"],
            description=answer["description"],
            metatags=answer["metatags"],
            prompt=prompt,
            negative_prompt=role.negative_prompt,
            role=role.id,
            theme=theme,
            prompt_source=SOURCE,
            prompt_model=self._model,
            picks={**picks, "role": role.id},
            settings=dict(role.settings),
        )

    async def _limited(self, call: Any) -> Any:
        async with self._parallel:
            return await call

    async def _ask_specs(self, messages: list[dict[str, str]], count: int) -> list[dict]:
        return await self._ask(
            messages,
            "prompt_specs",
            schema.SPECS_SCHEMA,
            lambda text: schema.read_specs(text, count),
            count,
        )

    # ------------------------------------------------------------------ soften

    async def soften(self, spec: PromptSpec, reason: str) -> PromptSpec:
        """The same spec with a description and tags rewritten to pass a safety filter."""
        user = (
            "Rewrite the description of this image so that an image service's safety filter "
            f"accepts it.\nWhy it was refused: {reason}\nTitle: {spec.title}\n"
            f"Description: {spec.description}\nTags: {', '.join(spec.metatags)}"
        )
        messages = [
            {"role": "system", "content": schema.SOFTEN_PROMPT},
            {"role": "user", "content": user},
        ]
        answer = await self._ask(messages, "rewrite", schema.REWRITE_SCHEMA, schema.read_rewrite, 0)
        style, render_type = spec.picks.get("style", ""), spec.picks.get("render_type", "")
        try:
            role = roles.get_role(spec.role, self._data_dir) if spec.role else None
        except (UsageError, ConfigError):
            role = None
        if role is not None:
            prompt = roles.compose_prompt(
                role, answer["description"], answer["metatags"], style, render_type
            )
        else:
            prompt = ", ".join([answer["description"], *answer["metatags"]])
        return dataclasses.replace(
            spec,
            description=answer["description"],
            metatags=answer["metatags"],
            prompt=prompt,
            prompt_model=self._model,
            picks={**spec.picks, "softened": reason[:300]},
        )

    # ------------------------------------------------------------------ one exchange

    async def _ask(
        self,
        messages: list[dict[str, str]],
        name: str,
        json_schema: dict,
        read: Callable[[str], T],
        count: int,
    ) -> T:
        """Ask, read the answer, and on a bad answer ask once more with the problem stated."""
        content = await self._complete(messages, name, json_schema)
        try:
            return read(content)
        except schema.SpecError as exc:
            problem = str(exc)
        repair = [
            *messages,
            {"role": "assistant", "content": content},
            {"role": "user", "content": schema.repair_message(problem, count)},
        ]
        content = await self._complete(repair, name, json_schema)
        try:
            return read(content)
        except schema.SpecError as exc:
            raise BadResponse(
                SOURCE,
                f"the model {self._model} gave no usable answer, even after being asked to fix "
                f"it: {exc}",
            ) from None

    async def _complete(self, messages: list[dict[str, str]], name: str, json_schema: dict) -> str:
        """One chat completion in the best output mode the server accepts."""
        while True:
            mode = self.output_mode
            extra: dict[str, Any] = {}
            response_format = schema.response_format(mode, name, json_schema)
            if response_format is not None:
                extra["response_format"] = response_format
            # Raised outside the except blocks so no SDK exception (which may quote the key)
            # rides along as __context__.
            error: ProviderError | None = None
            try:
                completion = await self._client.chat.completions.create(
                    model=self._model, messages=messages, **extra
                )
            except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
                if mode != "text" and _rejects_format(exc):
                    self._downgrade(mode)
                    continue
                error = error_for_openai(SOURCE, exc, secrets=[self._key])
            except openai.OpenAIError as exc:
                error = error_for_openai(SOURCE, exc, secrets=[self._key])
            except ValueError as exc:  # a 200 whose body is not JSON
                error = BadResponse(SOURCE, f"the server sent an unreadable answer: {exc}")
            if error is not None:
                raise error
            return self._content_of(completion)

    def _content_of(self, completion: Any) -> str:
        self.usage.calls += 1
        if completion.usage is not None:
            self.usage.prompt_tokens += completion.usage.prompt_tokens or 0
            self.usage.completion_tokens += completion.usage.completion_tokens or 0
        if not completion.choices:
            raise BadResponse(SOURCE, "the server answered with no choices")
        choice = completion.choices[0]
        refusal = getattr(choice.message, "refusal", None)
        if refusal:
            raise Refused(SOURCE, f"the model refused to write this prompt: {refusal}")
        if choice.finish_reason == "content_filter":
            raise Refused(SOURCE, "the server's content filter stopped the answer")
        return choice.message.content or ""

    def _downgrade(self, mode: str) -> None:
        # Concurrent calls may all fail on the same mode; step down once per mode.
        if self.output_mode == mode and self._mode_index < len(OUTPUT_MODES) - 1:
            self._mode_index += 1

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.close()


def _rejects_format(exc: openai.APIStatusError) -> bool:
    """Whether a 400/422 says the server cannot do the response_format we asked for."""
    if getattr(exc, "param", None) == "response_format":
        return True
    text = f"{exc.message} {getattr(exc, 'body', '')}".lower()
    if "content_policy" in text or "safety" in text:
        return False
    return any(word in text for word in FORMAT_WORDS)


async def _all(calls: list[Any]) -> list[Any]:
    """Run every call; on the first failure cancel the rest and raise it."""
    tasks = [asyncio.ensure_future(call) for call in calls]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
