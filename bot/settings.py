"""Settings read once from the environment and `.env` into a frozen object (SPEC §2)."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


class Secret:
    """A value that never shows itself in a repr, a log line or a traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _secret(env: Mapping[str, str], name: str) -> Secret | None:
    value = env.get(name, "").strip()
    return Secret(value) if value else None


def _text(env: Mapping[str, str], name: str, default: str | None = None) -> str | None:
    value = env.get(name, "").strip()
    return value or default


def _url(env: Mapping[str, str], name: str, default: str | None = None) -> str | None:
    value = _text(env, name, default)
    if value is None:
        return None
    if not re.match(r"^https?://[^\s/]+", value):
        raise ConfigError(f"{name} must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


def _url_list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    raw = env.get(name, "")
    urls = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        if not re.match(r"^https?://[^\s/]+", part):
            raise ConfigError(f"{name} must be comma-separated http(s) URLs, got {part!r}")
        urls.append(part.rstrip("/"))
    return tuple(urls)


def _int(
    env: Mapping[str, str], name: str, default: int, minimum: int = 0, maximum: int | None = None
) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be at most {maximum}, got {value}")
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in env.get(name, "").split(",") if part.strip())


def _id_list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    ids = _list(env, name)
    for item in ids:
        if not re.fullmatch(r"-?\d+", item):
            raise ConfigError(f"{name} must be comma-separated numeric ids, got {item!r}")
    return ids


def _file(env: Mapping[str, str], name: str) -> Path | None:
    value = _text(env, name)
    if value is None:
        return None
    path = Path(value).expanduser()
    if not path.is_file():
        raise ConfigError(f"{name} must name an existing file, got {value!r}")
    return path


def _writable_place(path: Path) -> tuple[Path, str | None]:
    """The nearest existing folder at or above `path`, and what stops writing there, if any."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        return probe, "is a file, not a folder"
    if probe.exists() and not os.access(probe, os.W_OK | os.X_OK):
        return probe, "is not writable"
    return probe, None


def _folder(env: Mapping[str, str], name: str, default: Path) -> Path:
    """A folder the archive can be written to (it may not exist yet)."""
    path = Path(_text(env, name) or default).expanduser()
    where, problem = _writable_place(path)
    if problem:
        shown = "it" if where == path else f"{where}, on its way,"
        raise ConfigError(f"{name} is {str(path)!r}, but {shown} {problem}; use a writable folder")
    return path


def _index_file(env: Mapping[str, str], name: str, default: Path) -> Path:
    """The SQLite index file: a file (existing or to be made), never a folder."""
    path = Path(_text(env, name) or default).expanduser()
    if path.is_dir():
        raise ConfigError(f"{name} is {str(path)!r}, a folder; name the index file, e.g. "
                          f"{path / 'archive.db'}")  # fmt: skip
    return path


def _telegram_token(env: Mapping[str, str], name: str) -> Secret | None:
    token = _secret(env, name)
    if token is not None and not re.fullmatch(r"\d+:[A-Za-z0-9_-]+", token.reveal()):
        raise ConfigError(
            f"{name} is not a bot token: it looks like 123456789:AAH…, as @BotFather gives it"
        )
    return token


def _patterns(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    patterns = _list(env, name)
    if patterns:
        from imagebot.commands.moderation import compiled

        compiled(patterns)  # a pattern that cannot be matched in bounded time: one line, now
    return patterns


def _choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str | None:
    value = _text(env, name)
    if value is not None and value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


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
            values, notes = _read_dotenv(Path(dotenv_path))
            env.update(values)
        env.update(os.environ if environ is None else environ)
        read = _Recording(env)
        settings = cls._from_mapping(read)
        notes += _unknown_names(env, read.asked)
        return dataclasses.replace(settings, warnings=tuple(notes))

    @classmethod
    def _from_mapping(cls, env: Mapping[str, str]) -> Settings:
        output_dir = _folder(env, "IMAGEBOT_OUTPUT_DIR", Path("output"))
        db_path = _index_file(env, "IMAGEBOT_DB", output_dir / "archive.db")
        openai_key = _secret(env, "OPENAI_API_KEY")
        openai_base = _url(env, "OPENAI_BASE_URL")
        sd_urls = _url_list(env, "STABLE_DIFFUSION_URL")
        comfy_urls = _url_list(env, "COMFYUI_URL")
        stability_key = _secret(env, "STABILITY_API_KEY")
        configured = configured_ids(PROVIDERS, lambda name: bool(_text(env, name)))
        default_provider = _choice(env, "IMAGEBOT_PROVIDER", PROVIDER_IDS) or next(
            (name for name in DEFAULT_ORDER if name in configured), "local"
        )
        fallback = _list(env, "IMAGEBOT_FALLBACK")
        for name in fallback:
            if name not in PROVIDER_IDS:
                raise ConfigError(
                    f"IMAGEBOT_FALLBACK names unknown provider {name!r}; "
                    f"allowed: {', '.join(PROVIDER_IDS)}"
                )
        prompt_source = _choice(env, "IMAGEBOT_PROMPT_SOURCE", tuple(PROMPT_SOURCES)) or (
            "gpt" if (openai_key or openai_base) else "templates"
        )
        return cls(
            openai_api_key=openai_key,
            openai_base_url=openai_base,
            chat_model=_text(env, "IMAGEBOT_CHAT_MODEL", DEFAULT_CHAT_MODEL),
            image_model=_text(env, "IMAGEBOT_IMAGE_MODEL", DEFAULT_IMAGE_MODEL),
            stable_diffusion_urls=sd_urls,
            stable_diffusion_upscaler=_text(env, "STABLE_DIFFUSION_UPSCALER", "R-ESRGAN 4x+"),
            stability_api_key=stability_key,
            stability_api_host=_url(env, "STABILITY_API_HOST", DEFAULT_STABILITY_HOST),
            stability_model=_text(env, "STABILITY_MODEL", "core"),
            comfyui_urls=comfy_urls,
            comfyui_workflow=_file(env, "COMFYUI_WORKFLOW"),
            comfyui_checkpoint=_text(env, "COMFYUI_CHECKPOINT"),
            horde_api_key=_secret(env, "HORDE_API_KEY") or Secret(ANONYMOUS_HORDE_KEY),
            horde_url=_url(env, "HORDE_URL", DEFAULT_HORDE_URL),
            horde_models=_list(env, "HORDE_MODELS"),
            fallback=fallback,
            discord_token=_secret(env, "DISCORD_TOKEN"),
            discord_api_base=_url(env, "DISCORD_API_BASE", DEFAULT_DISCORD_API),
            discord_guild_ids=_id_list(env, "DISCORD_GUILD_IDS"),
            telegram_token=_telegram_token(env, "TELEGRAM_TOKEN"),
            telegram_api_base=_url(env, "TELEGRAM_API_BASE", DEFAULT_TELEGRAM_API),
            telegram_webhook_url=_url(env, "TELEGRAM_WEBHOOK_URL"),
            telegram_webhook_secret=_secret(env, "TELEGRAM_WEBHOOK_SECRET"),
            telegram_webhook_host=_text(env, "TELEGRAM_WEBHOOK_HOST", "127.0.0.1"),
            telegram_webhook_port=_int(
                env, "TELEGRAM_WEBHOOK_PORT", 8080, minimum=1, maximum=65535
            ),  # fmt: skip
            telegram_send_documents=_flag(env, "TELEGRAM_SEND_DOCUMENTS"),
            output_dir=output_dir,
            db_path=db_path,
            default_provider=default_provider,
            prompt_source=prompt_source,
            max_images=_int(env, "IMAGEBOT_MAX_IMAGES", 10, minimum=1),
            daily_quota=_int(env, "IMAGEBOT_DAILY_QUOTA", 100),
            allowed_users=_id_list(env, "IMAGEBOT_ALLOWED_USERS"),
            allowed_roles=_id_list(env, "IMAGEBOT_ALLOWED_ROLES"),
            allowed_chats=_id_list(env, "IMAGEBOT_ALLOWED_CHATS"),
            banned_words=_patterns(env, "IMAGEBOT_BANNED_WORDS"),
            provider_concurrency=_int(env, "IMAGEBOT_PROVIDER_CONCURRENCY", 4, minimum=1),
            provider_rpm=_int(env, "IMAGEBOT_PROVIDER_RPM", 0),
            web_host=_text(env, "IMAGEBOT_WEB_HOST", "127.0.0.1"),
            web_port=_int(env, "IMAGEBOT_WEB_PORT", 8080, minimum=1, maximum=65535),
            web_token=_secret(env, "IMAGEBOT_WEB_TOKEN"),
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


class _Recording(dict):
    """The environment, remembering which names the settings asked for."""

    def __init__(self, env: Mapping[str, str]) -> None:
        super().__init__(env)
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)


def _unknown_names(env: Mapping[str, str], asked: set[str]) -> list[str]:
    """One warning per IMAGEBOT_* name that is no setting, naming the nearest real one."""
    import difflib

    known = sorted(name for name in asked if name.startswith("IMAGEBOT_"))
    notes = []
    for name in sorted(env):
        if name.startswith("IMAGEBOT_") and name not in asked:
            near = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            hint = f"; did you mean {near[0]}?" if near else ""
            notes.append(f"{name} is not a setting and is ignored{hint}")
    return notes


def _read_dotenv(path: Path) -> tuple[dict[str, str], list[str]]:
    """The values of a .env file, and one warning per line it cannot read (with the file)."""
    import logging

    from dotenv import dotenv_values
    from dotenv.parser import parse_stream

    with path.open(encoding="utf-8") as stream:
        bad = [binding.original.line for binding in parse_stream(stream) if binding.error]
    notes = [f"{path} line {line} is not NAME=value and is ignored" for line in bad]
    quiet = logging.getLogger("dotenv.main")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # its own warning names no file; ours above does
    try:
        values = {k: v for k, v in dotenv_values(path).items() if v is not None}
    finally:
        quiet.setLevel(level)
    return values, notes


def _reveal(secret: Secret | None) -> str | None:
    return secret.reveal() if secret else None
