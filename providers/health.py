"""Whether each configured provider answers, and the real reason when it does not.

The probes (providers.probes) use cheap read-only endpoints, never a render; this module runs
them, bounds their time, and masks every secret in what they say.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from imagebot.providers.base import ProviderError
from imagebot.providers.http_errors import scrub

if TYPE_CHECKING:
    import aiohttp

    from imagebot.providers.catalog import ProviderOptions

STABILITY_SIZES = "aspect ratios 1:1, 16:9, 21:9, 2:3, 3:2, 4:5, 5:4, 9:16, 9:21 (about 1 MP)"


@dataclass
class ServerHealth:
    """One server of a pool: its URL (credentials removed), whether it answers, and why not."""

    url: str
    ok: bool
    detail: str = ""


@dataclass
class Health:
    """What a probe of one provider found."""

    provider_id: str
    ok: bool
    model: str = ""
    models: list[str] = field(default_factory=list)
    sizes: str = ""
    detail: str = ""
    latency_ms: int | None = None
    servers: list[ServerHealth] = field(default_factory=list)  # pools: one entry per server

    @property
    def all_ok(self) -> bool:
        """The provider answers and so does every server of its pool."""
        return self.ok and all(server.ok for server in self.servers)


def _scrub(text: str, options: ProviderOptions) -> str:
    return scrub(text, options.secrets())


async def _provider_facts(
    provider_id: str, options: ProviderOptions, session: Any
) -> tuple[str, str]:
    """(model, sizes) as the provider itself describes them; ('', '') if it cannot say."""
    from imagebot.providers.catalog import build_provider

    try:
        provider = build_provider(provider_id, options, session)
    except ImportError:
        if provider_id == "stability":  # its module may not be installed yet
            return options.stability_model, STABILITY_SIZES
        return "", ""
    try:
        return str(provider.model), provider.sizes().describe()
    finally:
        await provider.aclose()


async def check_provider_health(
    provider_id: str,
    options: ProviderOptions,
    session: aiohttp.ClientSession,
    timeout: float = 5.0,
) -> Health:
    """Probe one provider; never raises for a provider that does not work."""
    from imagebot.providers.base import ConfigError
    from imagebot.providers.catalog import PROVIDERS
    from imagebot.providers.probes import PROBES, ProbeFailed

    if provider_id not in PROVIDERS:
        return Health(
            provider_id, False, detail=f"unknown provider; choose: {', '.join(PROVIDERS)}"
        )
    if provider_id not in options.configured:
        need = PROVIDERS[provider_id].requirement
        return Health(provider_id, False, detail=f"not configured: set {need}")
    try:
        model, sizes = await _provider_facts(provider_id, options, session)
    except (ConfigError, ProviderError) as exc:
        return Health(provider_id, False, detail=_scrub(str(exc), options))
    started = time.perf_counter()  # the probe only: building a provider may import an SDK
    try:
        health = await asyncio.wait_for(PROBES[provider_id](options, session, timeout), timeout * 4)
    except ProbeFailed as exc:
        health = Health(provider_id, False, detail=str(exc))
    except TimeoutError:
        health = Health(provider_id, False, detail=f"no answer within {timeout * 4:g} s")
    except Exception as exc:  # a health check reports every failure, it never raises
        health = Health(provider_id, False, detail=f"{type(exc).__name__}: {exc}")
    health.model = health.model or model
    health.sizes = health.sizes or sizes
    health.detail = _scrub(health.detail, options)
    for server in health.servers:
        server.detail = _scrub(server.detail, options)
    health.latency_ms = round((time.perf_counter() - started) * 1000)
    return health


async def check_all(
    options: ProviderOptions, session: aiohttp.ClientSession, timeout: float = 5.0
) -> list[Health]:
    """Probe every configured provider at once, in the registry's order."""
    ids = options.configured
    return list(
        await asyncio.gather(*(check_provider_health(p, options, session, timeout) for p in ids))
    )
