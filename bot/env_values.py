"""Reading one environment value each: text, URLs, numbers, lists, files, secrets; every bad
value is one ConfigError line naming the variable (SPEC §2)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from imagebot.providers.base import ConfigError


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


def read_secret(env: Mapping[str, str], name: str) -> Secret | None:
    value = env.get(name, "").strip()
    return Secret(value) if value else None


def read_text(env: Mapping[str, str], name: str, default: str | None = None) -> str | None:
    value = env.get(name, "").strip()
    return value or default


def read_url(env: Mapping[str, str], name: str, default: str | None = None) -> str | None:
    value = read_text(env, name, default)
    if value is None:
        return None
    if not re.match(r"^https?://[^\s/]+", value):
        raise ConfigError(f"{name} must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


def read_url_list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
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


def read_int(
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


def read_flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def read_list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in env.get(name, "").split(",") if part.strip())


def read_id_list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    ids = read_list(env, name)
    for item in ids:
        if not re.fullmatch(r"-?\d+", item):
            raise ConfigError(f"{name} must be comma-separated numeric ids, got {item!r}")
    return ids


def read_file(env: Mapping[str, str], name: str) -> Path | None:
    value = read_text(env, name)
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


def read_folder(env: Mapping[str, str], name: str, default: Path) -> Path:
    """A folder the archive can be written to (it may not exist yet)."""
    path = Path(read_text(env, name) or default).expanduser()
    where, problem = _writable_place(path)
    if problem:
        shown = "it" if where == path else f"{where}, on its way,"
        raise ConfigError(f"{name} is {str(path)!r}, but {shown} {problem}; use a writable folder")
    return path


def read_index_file(env: Mapping[str, str], name: str, default: Path) -> Path:
    """The SQLite index file: a file (existing or to be made), never a folder."""
    path = Path(read_text(env, name) or default).expanduser()
    if path.is_dir():
        raise ConfigError(f"{name} is {str(path)!r}, a folder; name the index file, e.g. "
                          f"{path / 'archive.db'}")  # fmt: skip
    return path


def read_telegram_token(env: Mapping[str, str], name: str) -> Secret | None:
    token = read_secret(env, name)
    if token is not None and not re.fullmatch(r"\d+:[A-Za-z0-9_-]+", token.reveal()):
        raise ConfigError(
            f"{name} is not a bot token: it looks like 123456789:AAH…, as @BotFather gives it"
        )
    return token


def read_patterns(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    patterns = read_list(env, name)
    if patterns:
        from imagebot.commands.moderation import compiled

        compiled(patterns)  # a pattern that cannot be matched in bounded time: one line, now
    return patterns


def read_choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str | None:
    value = read_text(env, name)
    if value is not None and value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


class RecordingEnv(dict):
    """The environment, remembering which names the settings asked for."""

    def __init__(self, env: Mapping[str, str]) -> None:
        super().__init__(env)
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)


def unknown_names(env: Mapping[str, str], asked: set[str]) -> list[str]:
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


def read_dotenv(path: Path) -> tuple[dict[str, str], list[str]]:
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
