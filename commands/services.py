"""What every command needs, built once per process by bot/: config, archive, index, providers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from imagebot.providers.catalog import build_prompt_source, build_provider

if TYPE_CHECKING:
    import aiohttp

    from imagebot.commands.config import CommandConfig
    from imagebot.providers.base import ImageProvider, PromptSource
    from imagebot.storage.archive import Archive
    from imagebot.storage.index import Index
    from imagebot.storage.owners import ProcessOwner


class Services:
    """Shared, lazily built dependencies. One HTTP session; one provider object per id."""

    def __init__(
        self,
        config: CommandConfig,
        archive: Archive,
        open_index: Callable[[], Index],
        session: aiohttp.ClientSession | None = None,
        owner: ProcessOwner | None = None,
    ):
        self.config = config
        self._owner = owner
        self.archive = archive
        self._open_index = open_index
        self._index: Index | None = None
        self._session = session
        self._owns_session = session is None
        self._providers: dict[str, ImageProvider] = {}
        self._sources: dict[str, PromptSource] = {}
        self._slots: dict[str, asyncio.Semaphore] = {}

    @property
    def owner(self) -> str | None:
        """This process's token on the batches it makes (see storage.owners)."""
        return self._owner.token if self._owner is not None else None

    @property
    def index(self) -> Index:
        if self._index is None:
            self._index = self._open_index()
        return self._index

    async def http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            import aiohttp

            self._session = aiohttp.ClientSession()
            self._owns_session = True
        return self._session

    async def provider(self, provider_id: str) -> ImageProvider:
        """The provider for `provider_id` (UsageError when unknown or unconfigured)."""
        if provider_id not in self._providers:
            self._providers[provider_id] = build_provider(
                provider_id, self.config.providers, await self.http()
            )
        return self._providers[provider_id]

    def prompt_source(self, source_id: str) -> PromptSource:
        if source_id not in self._sources:
            self._sources[source_id] = build_prompt_source(source_id, self.config.providers)
        return self._sources[source_id]

    def render_slots(self, provider: ImageProvider) -> asyncio.Semaphore:
        """The per-provider concurrency cap, shared by every batch of this process."""
        slots = self._slots.get(provider.provider_id)
        if slots is None:
            slots = asyncio.Semaphore(provider.max_concurrency)
            self._slots[provider.provider_id] = slots
        return slots

    async def aclose(self) -> None:
        for item in [*self._providers.values(), *self._sources.values()]:
            await item.aclose()
        self._providers.clear()
        self._sources.clear()
        if self._session is not None and self._owns_session:
            await self._session.close()
        if self._index is not None:
            self._index.close()
            self._index = None
        if self._owner is not None:
            self._owner.release()
