"""The text of `imagebot providers` and `/providers`: each provider, its models, and its health."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import aiohttp

    from imagebot.commands.config import CommandConfig
    from imagebot.providers.health import Health

MAX_MODELS_SHOWN = 5


def _models(models: Sequence[str]) -> str:
    shown = ", ".join(models[:MAX_MODELS_SHOWN])
    more = len(models) - MAX_MODELS_SHOWN
    return f"{shown} (+{more} more)" if more > 0 else shown


def format_health(
    healths: Sequence[Health], *, default: str | None = None, fallback: Sequence[str] = ()
) -> str:
    """A compact list, one block per provider, that reads the same in a terminal and a chat."""
    if not healths:
        return "No provider is configured."
    lines: list[str] = []
    for health in healths:
        mark = "ok" if health.all_ok else ("PARTLY" if health.ok else "DOWN")
        took = f" ({health.latency_ms} ms)" if health.latency_ms is not None else ""
        note = " (default)" if health.provider_id == default else ""
        lines.append(f"[{mark}] {health.provider_id}{note}{took}")
        if health.model:
            lines.append(f"    model: {health.model}")
        if health.models and health.models != [health.model]:
            lines.append(f"    models: {_models(health.models)}")
        if health.sizes:
            lines.append(f"    sizes: {health.sizes}")
        if health.servers:
            for server in health.servers:
                state = "ok" if server.ok else "DOWN"
                detail = f": {server.detail}" if server.detail else ""
                lines.append(f"    [{state}] {server.url}{detail}")
        elif health.detail:
            lines.append(f"    {health.detail}")
    answering = sum(1 for h in healths if h.ok)
    lines.append(f"{answering} of {len(healths)} providers answer.")
    if fallback:
        lines.append(f"Fallback order: {', '.join(fallback)}")
    return "\n".join(lines)


async def providers_report(
    config: CommandConfig, session: aiohttp.ClientSession, timeout: float = 5.0
) -> tuple[str, bool]:
    """(the report text, whether every configured provider and server answers)."""
    from imagebot.providers.health import check_all

    healths = await check_all(config.providers, session, timeout=timeout)
    text = format_health(healths, default=config.default_provider, fallback=config.fallback)
    return text, all(health.all_ok for health in healths)
