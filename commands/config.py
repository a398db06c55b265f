"""What the commands need to know about this installation: plain values, read once by bot/."""

from __future__ import annotations

from dataclasses import dataclass, field

from imagebot.providers.catalog import ProviderOptions


@dataclass(frozen=True)
class CommandConfig:
    """Limits, defaults and the configured providers (SPEC §2, §7), built by bot.settings."""

    default_provider: str = "local"
    prompt_source: str = "templates"
    fallback: tuple[str, ...] = ()
    max_images: int = 10
    daily_quota: int = 100
    allowed_users: tuple[str, ...] = ()
    allowed_roles: tuple[str, ...] = ()
    allowed_chats: tuple[str, ...] = ()
    banned_words: tuple[str, ...] = ()
    provider_concurrency: int = 4
    provider_rpm: int = 0
    providers: ProviderOptions = field(default_factory=ProviderOptions)

    @property
    def configured(self) -> tuple[str, ...]:
        """The provider ids whose settings are present, in the catalog's order."""
        return self.providers.configured

    def is_configured(self, provider_id: str) -> bool:
        return provider_id in self.providers.configured

    def configured_providers(self) -> list[str]:
        return list(self.providers.configured)
