"""Settings read once from the environment and `.env` into a frozen object (SPEC §2)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from imagebot.bot.env_values import (
    RecordingEnv,
    Secret,
    read_choice,
    read_dotenv,
    read_file,
    read_flag,
    read_folder,
    read_id_list,
    read_index_file,
    read_int,
    read_list,
    read_patterns,
    read_secret,
    read_telegram_token,
    read_text,
    read_url,
    read_url_list,
    unknown_names,
)
from imagebot.bot.scale_settings import Shards, read_archive_url, read_database_url, read_shards
from imagebot.commands.config import CommandConfig
from imagebot.providers.base import ConfigError
from imagebot.providers.catalog import (
    ANONYMOUS_HORDE_KEY,
    DEFAULT_CHAT_MODEL,
    DEFAULT_HORDE_URL,
    DEFAULT_IMAGE_MODEL,
    DEFAULT_ORDER,
    DEFAULT_STABILITY_HOST,
    PROMPT_SOURCES,
    PROVIDER_IDS,
    PROVIDERS,
    ProviderOptions,
    configured_ids,
)

DEFAULT_DISCORD_API = "https://discord.com/api/v10"
DEFAULT_TELEGRAM_API = "https://api.telegram.org"


@dataclass(frozen=True)
class Settings:
    """Everything configurable, validated. Build with `Settings.from_env()`."""

    openai_api_key: Secret | None = None
    openai_base_url: str | None = None
    chat_model: str = DEFAULT_CHAT_MODEL
    image_model: str = DEFAULT_IMAGE_MODEL
    stable_diffusion_urls: tuple[str, ...] = ()
    stable_diffusion_upscaler: str = "R-ESRGAN 4x+"
    stability_api_key: Secret | None = None
    stability_api_host: str = DEFAULT_STABILITY_HOST
    stability_model: str = "core"
    comfyui_urls: tuple[str, ...] = ()
    comfyui_workflow: Path | None = None
    comfyui_checkpoint: str | None = None
    horde_api_key: Secret = field(default_factory=lambda: Secret(ANONYMOUS_HORDE_KEY))
    horde_url: str = DEFAULT_HORDE_URL
    horde_models: tuple[str, ...] = ()
    fallback: tuple[str, ...] = ()
    discord_token: Secret | None = None
    discord_api_base: str = DEFAULT_DISCORD_API
    discord_guild_ids: tuple[str, ...] = ()
    telegram_token: Secret | None = None
    telegram_api_base: str = DEFAULT_TELEGRAM_API
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: Secret | None = None
    telegram_webhook_host: str = "127.0.0.1"
    telegram_webhook_port: int = 8080
    telegram_send_documents: bool = False
    output_dir: Path = Path("output")
    db_path: Path = Path("output/archive.db")
    default_provider: str = "local"
    prompt_source: str = "templates"
    max_images: int = 10
    daily_quota: int = 100
    allowed_users: tuple[str, ...] = ()
    allowed_roles: tuple[str, ...] = ()
    allowed_chats: tuple[str, ...] = ()
    banned_words: tuple[str, ...] = ()
    provider_concurrency: int = 4
    provider_rpm: int = 0
    web_host: str = "127.0.0.1"
    web_port: int = 8080
    web_token: Secret | None = None
    # Many processes (SPEC §9): the shared index and queue, the shared archive, this shard set.
    database_url: Secret | None = None
    archive_url: str | None = None
    s3_endpoint: str | None = None
    discord_shards: Shards | None = None
    configured: tuple[str, ...] = ("local",)  # the providers whose variables are set
    # Things a user should fix that do not stop the program (a typo in a variable's name, a
    # line of .env that cannot be read): shown once, one line each.
    warnings: tuple[str, ...] = ()

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, dotenv_path: str | Path | None = ".env"
    ) -> Settings:
        """Read settings from `environ` (default os.environ) over the values in `.env`."""
        env: dict[str, str] = {}
        notes: list[str] = []
        if dotenv_path is not None and Path(dotenv_path).is_file():
            values, notes = read_dotenv(Path(dotenv_path))
            env.update(values)
        env.update(os.environ if environ is None else environ)
        read = RecordingEnv(env)
        settings = cls._from_mapping(read)
        notes += unknown_names(env, read.asked)
        return dataclasses.replace(settings, warnings=tuple(notes))

    @classmethod
    def _from_mapping(cls, env: Mapping[str, str]) -> Settings:
        output_dir = read_folder(env, "IMAGEBOT_OUTPUT_DIR", Path("output"))
        db_path = read_index_file(env, "IMAGEBOT_DB", output_dir / "archive.db")
        openai_key = read_secret(env, "OPENAI_API_KEY")
        openai_base = read_url(env, "OPENAI_BASE_URL")
        sd_urls = read_url_list(env, "STABLE_DIFFUSION_URL")
        comfy_urls = read_url_list(env, "COMFYUI_URL")
        stability_key = read_secret(env, "STABILITY_API_KEY")
        configured = configured_ids(PROVIDERS, lambda name: bool(read_text(env, name)))
        default_provider = read_choice(env, "IMAGEBOT_PROVIDER", PROVIDER_IDS) or next(
            (name for name in DEFAULT_ORDER if name in configured), "local"
        )
        fallback = read_list(env, "IMAGEBOT_FALLBACK")
        for name in fallback:
            if name not in PROVIDER_IDS:
                raise ConfigError(
                    f"IMAGEBOT_FALLBACK names unknown provider {name!r}; "
                    f"allowed: {', '.join(PROVIDER_IDS)}"
                )
        prompt_source = read_choice(env, "IMAGEBOT_PROMPT_SOURCE", tuple(PROMPT_SOURCES)) or (
            "gpt" if (openai_key or openai_base) else "templates"
        )
        return cls(
            openai_api_key=openai_key,
            openai_base_url=openai_base,
            chat_model=read_text(env, "IMAGEBOT_CHAT_MODEL", DEFAULT_CHAT_MODEL),
            image_model=read_text(env, "IMAGEBOT_IMAGE_MODEL", DEFAULT_IMAGE_MODEL),
            stable_diffusion_urls=sd_urls,
            stable_diffusion_upscaler=read_text(env, "STABLE_DIFFUSION_UPSCALER", "R-ESRGAN 4x+"),
            stability_api_key=stability_key,
            stability_api_host=read_url(env, "STABILITY_API_HOST", DEFAULT_STABILITY_HOST),
            stability_model=read_text(env, "STABILITY_MODEL", "core"),
            comfyui_urls=comfy_urls,
            comfyui_workflow=read_file(env, "COMFYUI_WORKFLOW"),
            comfyui_checkpoint=read_text(env, "COMFYUI_CHECKPOINT"),
            horde_api_key=read_secret(env, "HORDE_API_KEY") or Secret(ANONYMOUS_HORDE_KEY),
            horde_url=read_url(env, "HORDE_URL", DEFAULT_HORDE_URL),
            horde_models=read_list(env, "HORDE_MODELS"),
            fallback=fallback,
            discord_token=read_secret(env, "DISCORD_TOKEN"),
            discord_api_base=read_url(env, "DISCORD_API_BASE", DEFAULT_DISCORD_API),
            discord_guild_ids=read_id_list(env, "DISCORD_GUILD_IDS"),
            telegram_token=read_telegram_token(env, "TELEGRAM_TOKEN"),
            telegram_api_base=read_url(env, "TELEGRAM_API_BASE", DEFAULT_TELEGRAM_API),
            telegram_webhook_url=read_url(env, "TELEGRAM_WEBHOOK_URL"),
            telegram_webhook_secret=read_secret(env, "TELEGRAM_WEBHOOK_SECRET"),
            telegram_webhook_host=read_text(env, "TELEGRAM_WEBHOOK_HOST", "127.0.0.1"),
            telegram_webhook_port=read_int(
                env, "TELEGRAM_WEBHOOK_PORT", 8080, minimum=1, maximum=65535
            ),  # fmt: skip
            telegram_send_documents=read_flag(env, "TELEGRAM_SEND_DOCUMENTS"),
            output_dir=output_dir,
            db_path=db_path,
            default_provider=default_provider,
            prompt_source=prompt_source,
            max_images=read_int(env, "IMAGEBOT_MAX_IMAGES", 10, minimum=1),
            daily_quota=read_int(env, "IMAGEBOT_DAILY_QUOTA", 100),
            allowed_users=read_id_list(env, "IMAGEBOT_ALLOWED_USERS"),
            allowed_roles=read_id_list(env, "IMAGEBOT_ALLOWED_ROLES"),
            allowed_chats=read_id_list(env, "IMAGEBOT_ALLOWED_CHATS"),
            banned_words=read_patterns(env, "IMAGEBOT_BANNED_WORDS"),
            provider_concurrency=read_int(env, "IMAGEBOT_PROVIDER_CONCURRENCY", 4, minimum=1),
            provider_rpm=read_int(env, "IMAGEBOT_PROVIDER_RPM", 0),
            web_host=read_text(env, "IMAGEBOT_WEB_HOST", "127.0.0.1"),
            web_port=read_int(env, "IMAGEBOT_WEB_PORT", 8080, minimum=1, maximum=65535),
            web_token=read_secret(env, "IMAGEBOT_WEB_TOKEN"),
            database_url=read_database_url(env, "IMAGEBOT_DATABASE_URL"),
            archive_url=read_archive_url(env, "IMAGEBOT_ARCHIVE_URL"),
            s3_endpoint=read_url(env, "IMAGEBOT_S3_ENDPOINT"),
            discord_shards=read_shards(env, "DISCORD_SHARDS"),
            configured=configured,
        )

    def is_configured(self, provider_id: str) -> bool:
        """Whether `provider_id` has what it needs to run."""
        return provider_id in self.configured

    def configured_providers(self) -> list[str]:
        return list(self.configured)

    @property
    def command_config(self) -> CommandConfig:
        """The limits and defaults the commands read (they never see the environment)."""
        return CommandConfig(
            default_provider=self.default_provider,
            prompt_source=self.prompt_source,
            fallback=self.fallback,
            max_images=self.max_images,
            daily_quota=self.daily_quota,
            allowed_users=self.allowed_users,
            allowed_roles=self.allowed_roles,
            allowed_chats=self.allowed_chats,
            banned_words=self.banned_words,
            provider_concurrency=self.provider_concurrency,
            provider_rpm=self.provider_rpm,
            providers=self.provider_options,
        )

    @property
    def provider_options(self) -> ProviderOptions:
        """The plain values providers are built from; secrets revealed only here."""
        return ProviderOptions(
            openai_api_key=_reveal(self.openai_api_key),
            openai_base_url=self.openai_base_url,
            chat_model=self.chat_model,
            image_model=self.image_model,
            stable_diffusion_urls=self.stable_diffusion_urls,
            stable_diffusion_upscaler=self.stable_diffusion_upscaler,
            stability_api_key=_reveal(self.stability_api_key),
            stability_api_host=self.stability_api_host,
            stability_model=self.stability_model,
            comfyui_urls=self.comfyui_urls,
            comfyui_workflow=self.comfyui_workflow,
            comfyui_checkpoint=self.comfyui_checkpoint,
            horde_api_key=_reveal(self.horde_api_key) or ANONYMOUS_HORDE_KEY,
            horde_url=self.horde_url,
            horde_models=self.horde_models,
            provider_concurrency=self.provider_concurrency,
            configured=self.configured,
        )


def _reveal(secret: Secret | None) -> str | None:
    return secret.reveal() if secret else None
