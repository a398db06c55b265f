"""Chat arguments as platforms give them (Discord options, Telegram words) -> keyword arguments."""

from __future__ import annotations

import re
from typing import Any

from imagebot.providers.base import UsageError
from imagebot.providers.catalog import PROVIDERS

NUMBER = re.compile(r"^[-+]?\d+$")
SIZE_WORD = re.compile(r"^\d+[xX×]\d+$")
MAX_EXPORT_DAYS = 3650


def _option(args: dict[str, Any], name: str) -> Any:
    value = args.get(name)
    if isinstance(value, str) and not value.strip():
        return None
    return value


def generate_words(text: str) -> dict[str, Any]:
    """Telegram's `/generate 4 512x512 dalle a foggy harbour`, recognised by each word's form.

    A leading number is the count, a WxH word the size, a provider's name (before the theme
    starts) the provider; the rest is the theme. Out-of-range numbers and sizes are left for
    parse_generate to refuse, so they are errors and never part of a theme.
    """
    words = text.split()
    found: dict[str, Any] = {}
    theme: list[str] = []
    for position, word in enumerate(words):
        if position == 0 and NUMBER.match(word):
            found["count"] = word
        elif SIZE_WORD.match(word):
            if "size" in found:
                raise UsageError(f"two sizes given ({found['size']} and {word}); give one WxH")
            found["size"] = word
        elif not theme and word.lower() in PROVIDERS:
            if "provider" in found:
                raise UsageError(
                    f"two providers given ({found['provider']} and {word}); choose one"
                )
            found["provider"] = word.lower()
        else:
            theme.append(word)
    if theme:
        found["theme"] = " ".join(theme)
    return found


def generate_args(args: dict[str, Any]) -> dict[str, Any]:
    """count/size/provider/theme from Discord's named options or Telegram's words."""
    if "text" in args:
        return generate_words(str(args.get("text") or ""))
    found = {}
    for name in ("count", "size", "provider", "theme"):
        value = _option(args, name)
        if value is not None:
            found[name] = value
    return found


def single_number(args: dict[str, Any], name: str) -> Any:
    """The one argument of /prompts or /export: an option, or the first Telegram word."""
    if "text" in args:
        words = str(args.get("text") or "").split()
        if len(words) > 1:
            raise UsageError(f"give at most one {name}, got {' '.join(words)!r}")
        return words[0] if words else None
    return _option(args, name)


def export_days(value: Any) -> int | None:
    """`/export [days]`: the last N days, or everything when no number is given."""
    if value is None:
        return None
    text = str(value).strip()
    if not NUMBER.match(text) or not 1 <= int(text) <= MAX_EXPORT_DAYS:
        raise UsageError(
            f"days must be a whole number from 1 to {MAX_EXPORT_DAYS}, got {text!r} "
            "(leave it out to export everything)"
        )
    return int(text)


def prompts_args(args: dict[str, Any]) -> dict[str, Any]:
    """`/prompts [count] [theme]`: Discord options, or Telegram words (a leading number)."""
    if "text" in args:
        words = str(args.get("text") or "").split()
        found: dict[str, Any] = {}
        if words and NUMBER.match(words[0]):
            found["count"] = words.pop(0)
        if words:
            found["theme"] = " ".join(words)
        return found
    return {
        name: value for name in ("count", "theme") if (value := _option(args, name)) is not None
    }
