"""`generate`: validate a request, get prompt specs, render, archive. Platform-neutral."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from imagebot.commands.archiving import BatchResult, archive_batch, index_row
from imagebot.commands.catalog import MAX_THEME
from imagebot.commands.moderation import banned_match
from imagebot.commands.render import RenderOutcome, render_spec, report_progress
from imagebot.commands.requester import CLI, Requester
from imagebot.providers.base import (
    ConfigError,
    ProgressCallback,
    PromptRequest,
    PromptSpec,
    ProviderError,
    Size,
    Unavailable,
    UsageError,
)
from imagebot.providers.catalog import check_prompt_source, check_provider
from imagebot.storage.index import utc_now
from imagebot.storage.text import clean, has_word

if TYPE_CHECKING:
    from imagebot.commands.config import CommandConfig
    from imagebot.commands.services import Services

DEFAULT_SIZE = "1024x1024"
MAX_BATCHES = 50
ImagesProgress = Callable[[int, int], Awaitable[None] | None]


@dataclass(frozen=True)
class GenerateRequest:
    """A validated request: B batches of COUNT images of new (or given) prompt specs."""

    count: int
    size: Size
    provider: str
    prompt_source: str
    theme: str | None = None
    role: str | None = None
    batches: int = 1
    seed: int | None = None
    requester: Requester = CLI
    spec: PromptSpec | None = None  # render this spec again instead of asking for a new one
    job_id: str | None = None  # the chat job this request runs for (batches.job_id)


def parse_count(value: Any, maximum: int, what: str = "count") -> int:
    """A whole number from 1 to `maximum`, or a UsageError saying so."""
    text = str(value).strip()
    if not text.lstrip("-").isdigit() or not 1 <= int(text) <= maximum:
        raise UsageError(f"{what} must be a whole number from 1 to {maximum}, got {text!r}")
    return int(text)


def parse_role(role: str | None) -> str | None:
    if role is None:
        return None
    from imagebot.providers.roles import get_role

    return get_role(role).id


def parse_prompt_source(source: str | None, config: CommandConfig) -> str:
    source = source or config.prompt_source
    check_prompt_source(source, config.providers)
    return source


def check_theme(theme: str | None, config: CommandConfig) -> str | None:
    """The theme as it will be used: cleaned of control characters; None when empty."""
    theme = clean(theme)
    if not theme:
        return None
    if not has_word(theme):
        raise UsageError(
            f"the theme {theme!r} has no letter or digit; describe what the images should show"
        )
    if len(theme) > MAX_THEME:
        raise UsageError(f"the theme is {len(theme)} characters; at most {MAX_THEME} are allowed")
    banned = banned_match([theme], config.banned_words)
    if banned:
        raise UsageError(f"the theme contains a banned word or pattern ({banned}); rephrase it")
    return theme


def clean_spec(spec: PromptSpec) -> PromptSpec:
    """What a prompt source wrote, without control characters (it may echo hostile text)."""
    spec.title = clean(spec.title) or "Untitled"
    spec.description = clean(spec.description, newlines=True)
    spec.metatags = [tag for tag in (clean(tag) for tag in spec.metatags) if tag]
    spec.prompt = clean(spec.prompt)
    spec.negative_prompt = clean(spec.negative_prompt)
    return spec


def parse_generate(
    config: CommandConfig,
    *,
    count: Any = 4,
    size: str | None = None,
    provider: str | None = None,
    theme: str | None = None,
    role: str | None = None,
    prompt_source: str | None = None,
    batches: Any = 1,
    requester: Requester = CLI,
) -> GenerateRequest:
    """Check every argument; raise UsageError on the first bad one, before any work."""
    provider = provider or config.default_provider
    request = GenerateRequest(
        count=parse_count(count, config.max_images),
        size=Size.parse(size or DEFAULT_SIZE),
        provider=provider,
        prompt_source=parse_prompt_source(prompt_source, config),
        theme=check_theme(theme, config),
        role=parse_role(role),
        batches=parse_count(batches, MAX_BATCHES, "batches"),
        requester=requester,
    )
    check_provider(provider, config.configured)
    return request


async def make_specs(services: Services, request: GenerateRequest, count: int) -> list[PromptSpec]:
    """Ask the prompt source for `count` specs; the LLM's words pass the banned list."""
    source = services.prompt_source(request.prompt_source)
    specs = await source.generate(
        PromptRequest(count=count, role=request.role, theme=request.theme, seed=request.seed)
    )
    patterns = services.config.banned_words
    specs = [clean_spec(spec) for spec in specs]
    for spec in specs:
        banned = banned_match([spec.title, spec.description, spec.prompt], patterns)
        if banned:
            raise ProviderError(
                request.prompt_source,
                f"the generated prompt contained a banned word or pattern ({banned}); "
                "try another theme",
            )
    return specs


async def generate(
    services: Services,
    request: GenerateRequest,
    progress: ImagesProgress | None = None,
    notes: ProgressCallback | None = None,
) -> list[BatchResult]:
    """Make every batch of `request`: specs first (few round trips), then renders."""
    if request.spec is not None:
        specs = [request.spec] * request.batches
    else:
        specs = await make_specs(services, request, request.batches)
    total = request.count * len(specs)
    done_per_batch = [0] * len(specs)

    def batch_progress(index: int) -> ImagesProgress:
        async def report(done: int, _total: int) -> None:
            done_per_batch[index] = done
            await report_progress(progress, sum(done_per_batch), total)

        return report

    return list(
        await asyncio.gather(
            *(
                render_batch(services, request, spec, batch_progress(i), notes)
                for i, spec in enumerate(specs)
            )
        )
    )


def _providers_to_try(request: GenerateRequest, config: CommandConfig) -> list[str]:
    order = [request.provider]
    for name in config.fallback:
        if name not in order and config.is_configured(name):
            order.append(name)
    return order


async def render_batch(
    services: Services,
    request: GenerateRequest,
    spec: PromptSpec,
    progress: ImagesProgress | None = None,
    notes: ProgressCallback | None = None,
) -> BatchResult:
    """Render one spec COUNT times, falling back when a provider is unavailable; archive it."""
    batch_id = uuid.uuid4().hex[:12]
    created = utc_now()
    base_seed = (
        request.seed if request.seed is not None else random.randrange(2**31 - request.count)
    )
    seeds = [base_seed + i for i in range(request.count)]
    source = services.prompt_source(spec.prompt_source or request.prompt_source)
    fallback_from: list[str] = []
    outcome = RenderOutcome(images=[])
    provider = None
    services.index.start_batch(index_row(batch_id, spec, request, created, services.owner))
    try:
        for provider_id in _providers_to_try(request, services.config):
            try:
                provider = await services.provider(provider_id)
            except (UsageError, ConfigError) as exc:
                outcome.errors.append(ProviderError(provider_id, str(exc)))
                continue
            outcome = await render_spec(
                provider,
                spec,
                request.size,
                seeds,
                services.render_slots(provider),
                source=source,
                progress=progress,
                notes=notes,
            )
            if outcome.images or not all(isinstance(e, Unavailable) for e in outcome.errors):
                break
            fallback_from.append(provider_id)
    except BaseException as exc:
        # Ctrl-C, /cancel, a stopping bot or a bug: the batch is never left 'rendering'.
        reason = exc.args[0] if isinstance(exc, asyncio.CancelledError) and exc.args else None
        services.index.finish_batch(batch_id, status="failed", error=reason or "interrupted")
        raise
    return await archive_batch(
        services, request, spec, batch_id, created, provider, outcome, fallback_from
    )
