"""Which class serves each provider and prompt-source id; imported lazily for a fast start."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from imagebot.providers.base import UsageError

if TYPE_CHECKING:
    import aiohttp

    from imagebot.bot.settings import Settings
    from imagebot.providers.base import ImageProvider, PromptSource

PROVIDERS: dict[str, tuple[str, str]] = {
    "dalle": ("imagebot.providers.openai_images", "OpenAIImagesProvider"),
    "stable-diffusion": ("imagebot.providers.webui", "WebUIProvider"),
    "stability": ("imagebot.providers.stability", "StabilityProvider"),
    "comfyui": ("imagebot.providers.comfyui", "ComfyUIProvider"),
    "horde": ("imagebot.providers.horde", "HordeProvider"),
    "local": ("imagebot.providers.local.provider", "LocalProvider"),
}
PROMPT_SOURCES: dict[str, tuple[str, str]] = {
    "gpt": ("imagebot.providers.gpt", "GptSource"),
    "templates": ("imagebot.providers.templates", "TemplateSource"),
}
# What a user must set before a provider can run; named in the error they see.
REQUIRED_SETTING = {
    "dalle": "OPENAI_API_KEY (or OPENAI_BASE_URL)",
    "stable-diffusion": "STABLE_DIFFUSION_URL",
    "stability": "STABILITY_API_KEY",
    "comfyui": "COMFYUI_URL",
    "horde": "HORDE_API_KEY (0000000000 for anonymous use) or HORDE_URL",
}


def _load(table: dict[str, tuple[str, str]], key: str) -> Any:
    module_name, class_name = table[key]
    return getattr(importlib.import_module(module_name), class_name)


def check_provider(provider_id: str, settings: Settings) -> None:
    """Raise UsageError for an unknown or unconfigured provider, naming what is allowed."""
    if provider_id not in PROVIDERS:
        raise UsageError(f"unknown provider {provider_id!r}; choose one of: {', '.join(PROVIDERS)}")
    if not settings.is_configured(provider_id):
        configured = ", ".join(settings.configured_providers())
        raise UsageError(
            f"provider {provider_id!r} is not configured: set {REQUIRED_SETTING[provider_id]}; "
            f"configured now: {configured}"
        )


def build_provider(
    provider_id: str, settings: Settings, session: aiohttp.ClientSession
) -> ImageProvider:
    """A ready provider for `provider_id`, sharing `session` for HTTP."""
    check_provider(provider_id, settings)
    return _load(PROVIDERS, provider_id).from_settings(settings, session)


def check_prompt_source(source_id: str, settings: Settings) -> None:
    """Raise UsageError for an unknown or unconfigured prompt source, naming what is allowed."""
    if source_id not in PROMPT_SOURCES:
        raise UsageError(
            f"unknown prompt source {source_id!r}; choose one of: {', '.join(PROMPT_SOURCES)}"
        )
    if source_id == "gpt" and not (settings.openai_api_key or settings.openai_base_url):
        raise UsageError(
            "prompt source 'gpt' is not configured: set OPENAI_API_KEY or OPENAI_BASE_URL, "
            "or use the offline source 'templates'"
        )


def build_prompt_source(source_id: str, settings: Settings) -> PromptSource:
    """A ready prompt source (`gpt` or `templates`)."""
    check_prompt_source(source_id, settings)
    return _load(PROMPT_SOURCES, source_id).from_settings(settings)
