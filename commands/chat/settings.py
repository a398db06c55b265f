"""`/settings show|set|reset`: a chat's own defaults for /generate and /daily (SPEC §6)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from imagebot.commands.catalog import SETTING_KEYS
from imagebot.commands.generate import DEFAULT_SIZE, parse_count
from imagebot.providers.base import Size, UsageError
from imagebot.providers.catalog import check_provider
from imagebot.storage.chat_settings import ChatSettingsStore

if TYPE_CHECKING:
    from imagebot.commands.chat import ChatCommands
    from imagebot.commands.config import CommandConfig
    from imagebot.commands.invocation import Invocation
    from imagebot.commands.ports import ReplyPort
    from imagebot.commands.requester import Requester
    from imagebot.commands.services import Services

SWITCH = {"on": True, "off": False, "yes": True, "no": False, "true": True, "false": False}
MAX_CHAT_QUOTA = 100_000


@dataclass(frozen=True)
class ChatDefaults:
    """What /generate and /daily use where the user gives nothing, for one chat."""

    provider: str | None = None
    size: str | None = None
    count: int | None = None
    role: str | None = None
    quota: int | None = None
    spoiler: bool = False


def defaults(services: Services, requester: Requester) -> ChatDefaults:
    """The chat's settings (only keys still valid here: a provider unconfigured since is
    ignored rather than breaking every /generate in the chat)."""
    values = ChatSettingsStore(services.index.db).get(requester.platform, requester.chat_id)
    provider = values.get("provider")
    if provider is not None and not services.config.is_configured(provider):
        provider = None
    return ChatDefaults(
        provider=provider,
        size=values.get("size"),
        count=values.get("count"),
        role=values.get("role"),
        quota=values.get("quota"),
        spoiler=bool(values.get("spoiler", False)),
    )


def allowed_values(key: str, config: CommandConfig) -> str:
    """What `key` may be set to, as the refusal says it."""
    top = config.daily_quota or MAX_CHAT_QUOTA
    quota = f"from 1 to {top}" if config.daily_quota else f"from 0 (no limit) to {top}"
    return {
        "provider": f"one of the configured providers: {', '.join(config.configured)}",
        "size": "WxH in pixels, e.g. 512x512 or 1024x576 (each side 64-4096)",
        "count": f"a whole number from 1 to {config.max_images}",
        "role": "a role pack: " + ", ".join(_role_ids()),
        "quota": f"images per person per UTC day, a whole number {quota}",
        "spoiler": "on or off",
    }[key]


def _role_ids() -> list[str]:
    from imagebot.providers.roles import role_ids

    return role_ids()


def parse_value(key: str, text: str, config: CommandConfig) -> Any:
    """The stored form of `key`'s new value; UsageError listing what is allowed."""
    if key not in SETTING_KEYS:
        raise UsageError(f"unknown setting {key!r}; the settings are {', '.join(SETTING_KEYS)}")
    value = text.strip()
    try:
        if key == "provider":
            check_provider(value.lower(), config.configured)
            return value.lower()
        if key == "size":
            return str(Size.parse(value))
        if key == "count":
            return parse_count(value, config.max_images)
        if key == "role":
            from imagebot.providers.roles import get_role

            return get_role(value).id
        if key == "quota":
            # A chat can tighten the bot-wide quota, never lift it.
            top = config.daily_quota or MAX_CHAT_QUOTA
            bottom = 1 if config.daily_quota else 0
            if not value.isdigit() or not bottom <= int(value) <= top:
                raise UsageError(f"quota {value!r} is not allowed")
            return int(value)
        if value.lower() not in SWITCH:
            raise UsageError(f"spoiler {value!r} is not allowed")
        return SWITCH[value.lower()]
    except UsageError:
        raise UsageError(f"{key} cannot be {value!r}: use {allowed_values(key, config)}") from None


def show_text(values: dict[str, Any], config: CommandConfig) -> str:
    """Every key with this chat's value, or the bot's default it falls back to."""
    bot_defaults = {
        "provider": config.default_provider,
        "size": DEFAULT_SIZE,
        "count": 4,
        "role": "varied",
        "quota": config.daily_quota or "no limit",
        "spoiler": False,
    }
    lines = ["This chat's settings:"]
    for key in SETTING_KEYS:
        value = values.get(key, bot_defaults[key])
        if isinstance(value, bool):
            value = "on" if value else "off"
        source = "" if key in values else " (the bot's default)"
        lines.append(f"• {key}: {value}{source}")
    lines.append("Moderators change them with /settings set KEY VALUE or /settings reset [KEY].")
    return "\n".join(lines)


async def run(
    chat: ChatCommands, invocation: Invocation, port: ReplyPort, args: dict[str, Any]
) -> None:
    config = chat.services.config
    who = invocation.requester
    if not who.chat_id:
        raise UsageError("/settings belong to a chat or channel; use it there")
    store = ChatSettingsStore(chat.services.index.db)
    values = store.get(who.platform, who.chat_id)
    action = args["action"]
    if action == "show":
        await port.text(show_text(values, config), private=True)
        return
    key = str(args.get("key") or "").lower()
    if action == "set":
        values[key] = parse_value(key, str(args["value"]), config)
        store.put(who.platform, who.chat_id, values, who.user_id)
        shown = values[key] if not isinstance(values[key], bool) else SPOKEN[values[key]]
        await port.text(f"This chat's {key} is now {shown}.")
        return
    if key and key not in SETTING_KEYS:
        raise UsageError(f"unknown setting {key!r}; the settings are {', '.join(SETTING_KEYS)}")
    if key:
        values.pop(key, None)
    else:
        values = {}
    store.put(who.platform, who.chat_id, values, who.user_id)
    what = f"This chat's {key} is" if key else "All of this chat's settings are"
    await port.text(f"{what} back to the bot's default.")


SPOKEN = {True: "on", False: "off"}
