"""The one table of what exists: every image provider and prompt source, what each needs, and
how to build it from plain values. The CLI's choices, /providers, /help, settings and the
services all read it; classes are imported only when built, for a fast start.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagebot.providers.base import UsageError

if TYPE_CHECKING:
    import aiohttp

    from imagebot.providers.base import ImageProvider, PromptSource

ANONYMOUS_HORDE_KEY = "0000000000"
DEFAULT_HORDE_URL = "https://aihorde.net"
DEFAULT_STABILITY_HOST = "https://api.stability.ai"
DEFAULT_CHAT_MODEL = "gpt-4o-mini"
DEFAULT_IMAGE_MODEL = "gpt-image-1"


@dataclass(frozen=True)
class ProviderOptions:
    """The plain values providers and prompt sources are built from (bot.settings fills it)."""

    openai_api_key: str | None = field(default=None, repr=False)
    openai_base_url: str | None = None
    chat_model: str = DEFAULT_CHAT_MODEL
    image_model: str = DEFAULT_IMAGE_MODEL
    stable_diffusion_urls: tuple[str, ...] = ()
    stable_diffusion_upscaler: str | None = None
    stability_api_key: str | None = field(default=None, repr=False)
    stability_api_host: str = DEFAULT_STABILITY_HOST
    stability_model: str = "core"
    comfyui_urls: tuple[str, ...] = ()
    comfyui_workflow: Path | None = None
    comfyui_checkpoint: str | None = None
    horde_api_key: str = field(default=ANONYMOUS_HORDE_KEY, repr=False)
    horde_url: str = DEFAULT_HORDE_URL
    horde_models: tuple[str, ...] = ()
    provider_concurrency: int = 4
    configured: tuple[str, ...] = ("local",)  # provider ids whose settings are present

    def secrets(self) -> list[str]:
        """Every key, to mask wherever a server's text is shown."""
        keys = (self.openai_api_key, self.stability_api_key, self.horde_api_key)
        return [key for key in keys if key]

    @property
    def gpt_configured(self) -> bool:
        return bool(self.openai_api_key or self.openai_base_url)


@dataclass(frozen=True)
class Entry:
    """One row of the table: an id, where its class lives, and what configures it."""

    id: str
    module: str
    class_name: str
    enabled_by: tuple[str, ...]  # any of these variables set configures it; () = always
    requirement: str = ""  # what to set, as the user reads it in an error

    def load(self) -> Any:
        """The class (imported now: SDKs load only for what is used)."""
        return getattr(importlib.import_module(self.module), self.class_name)


def _entry(id: str, module: str, class_name: str, *enabled_by: str, need: str = "") -> Entry:
    need = need or " (or ".join(enabled_by) + ")" * (len(enabled_by) - 1)
    return Entry(id, f"imagebot.providers.{module}", class_name, enabled_by, need)


PROVIDERS: dict[str, Entry] = {
    entry.id: entry
    for entry in (
        _entry("dalle", "openai_images", "OpenAIImagesProvider", "OPENAI_API_KEY",
               "OPENAI_BASE_URL"),
        _entry("stable-diffusion", "webui", "WebUIProvider", "STABLE_DIFFUSION_URL"),
        _entry("stability", "stability", "StabilityProvider", "STABILITY_API_KEY"),
        _entry("comfyui", "comfyui", "ComfyUIProvider", "COMFYUI_URL"),
        # A network service is opt-in, so an offline machine never lists what it cannot reach.
        _entry("horde", "horde", "HordeProvider", "HORDE_API_KEY", "HORDE_URL",
               need="HORDE_API_KEY (0000000000 for anonymous use) or HORDE_URL"),
        _entry("local", "local.provider", "LocalProvider"),
    )
}  # fmt: skip
PROMPT_SOURCES: dict[str, Entry] = {
    entry.id: entry
    for entry in (
        _entry("gpt", "gpt", "GptSource", "OPENAI_API_KEY", "OPENAI_BASE_URL"),
        _entry("templates", "templates", "TemplateSource"),
    )
}
PROVIDER_IDS: tuple[str, ...] = tuple(PROVIDERS)
# The default provider when IMAGEBOT_PROVIDER is unset: the first of these that is configured.
DEFAULT_ORDER = ("dalle", "stable-diffusion", "stability", "comfyui")


def configured_ids(table: dict[str, Entry], is_set: Callable[[str], bool]) -> tuple[str, ...]:
    """The ids of `table` whose variables are set (`is_set(name)`), in table order."""
    return tuple(
        entry.id
        for entry in table.values()
        if not entry.enabled_by or any(is_set(name) for name in entry.enabled_by)
    )


def check_provider(provider_id: str, configured: Collection[str]) -> None:
    """Raise UsageError for an unknown or unconfigured provider, naming what is allowed."""
    entry = PROVIDERS.get(provider_id)
    if entry is None:
        raise UsageError(f"unknown provider {provider_id!r}; choose one of: {', '.join(PROVIDERS)}")
    if provider_id not in configured:
        raise UsageError(
            f"provider {provider_id!r} is not configured: set {entry.requirement}; "
            f"configured now: {', '.join(configured)}"
        )


def build_provider(
    provider_id: str, options: ProviderOptions, session: aiohttp.ClientSession
) -> ImageProvider:
    """A ready provider for `provider_id`, sharing `session` for HTTP."""
    check_provider(provider_id, options.configured)
    return PROVIDERS[provider_id].load().from_options(options, session)


def check_prompt_source(source_id: str, options: ProviderOptions) -> None:
    """Raise UsageError for an unknown or unconfigured prompt source, naming what is allowed."""
    if source_id not in PROMPT_SOURCES:
        raise UsageError(
            f"unknown prompt source {source_id!r}; choose one of: {', '.join(PROMPT_SOURCES)}"
        )
    if source_id == "gpt" and not options.gpt_configured:
        raise UsageError(
            "prompt source 'gpt' is not configured: set OPENAI_API_KEY or OPENAI_BASE_URL, "
            "or use the offline source 'templates'"
        )


def build_prompt_source(source_id: str, options: ProviderOptions) -> PromptSource:
    """A ready prompt source (`gpt` or `templates`)."""
    check_prompt_source(source_id, options)
    return PROMPT_SOURCES[source_id].load().from_options(options)
