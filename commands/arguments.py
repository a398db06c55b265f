"""An invocation's arguments as named values, whether the platform gave options (Discord, the
web form) or words (Telegram, the web chat): `/generate 4 512x512 dalle a foggy harbour`.

Words are recognised by their form, driven by the command's declaration (commands.catalog).
Values are checked afterwards, once, by the command itself: an out-of-range number or size is
an error there, never part of a theme.
"""

from __future__ import annotations

import re
from typing import Any

from imagebot.commands.catalog import Arg, Command
from imagebot.providers.base import UsageError
from imagebot.providers.catalog import PROVIDERS

NUMBER = re.compile(r"^[-+]?\d+$")
SIZE_WORD = re.compile(r"^\d+\s*[xX×]\s*\d+$")
TIME_WORD = re.compile(r"^\d{1,2}:\d{1,2}$")
WORDY = ("time", "provider", "key", "number")


def usage(command: Command, parent: str | None = None) -> str:
    """`/daily set TIME [provider] [size] [count]`, from the declaration."""
    name = f"/{parent} {command.name}" if parent else f"/{command.name}"
    if command.actions:
        return " | ".join(usage(action, command.name) for action in command.actions)
    parts = [name]
    for arg in command.args:
        label = arg.name.upper() if arg.required else f"[{arg.name}]"
        parts.append(label)
    return " ".join(parts)


def _matches(arg: Arg, word: str, position: int, text_started: bool) -> bool:
    if arg.kind == "count":
        return position == 0 and bool(NUMBER.match(word))
    if arg.kind == "number":
        return bool(NUMBER.match(word))
    if arg.kind == "size":
        return bool(SIZE_WORD.match(word))
    if arg.kind == "time":
        return bool(TIME_WORD.match(word))
    if arg.kind == "provider":
        return not text_started and word.lower() in PROVIDERS
    if arg.kind == "key":
        return not text_started and word.lower() in arg.choices
    return False


def from_words(command: Command, text: str, parent: str | None = None) -> dict[str, Any]:
    """Named arguments from the words after the command (and after a group's action)."""
    words = text.split()
    found: dict[str, Any] = {}
    if command.actions:
        if not words:
            raise UsageError(f"say what to do: {usage(command)}")
        action = command.action(words[0].lower())
        if action is None:
            raise UsageError(f"unknown /{command.name} action {words[0]!r}; {usage(command)}")
        rest_words = " ".join(words[1:])
        return {"action": action.name, **from_words(action, rest_words, command.name)}
    text_arg = next((arg for arg in command.args if arg.kind == "text"), None)
    others = [arg for arg in command.args if arg is not text_arg]
    rest: list[str] = []
    for position, word in enumerate(words):
        arg = next((a for a in others if _matches(a, word, position, bool(rest))), None)
        if arg is None and text_arg is None:
            # No text to belong to: the word is a bad value of the first argument still open
            # that takes words, and that argument's own check says what is allowed.
            arg = next((a for a in others if a.kind in WORDY and a.name not in found), None)
        if arg is None:
            if text_arg is None:
                raise UsageError(f"{word!r} is not an argument of {usage(command, parent)}")
            rest.append(word)
        elif arg.name in found:
            raise UsageError(f"two {arg.name}s given ({found[arg.name]} and {word}); give one")
        else:
            found[arg.name] = word.lower() if arg.kind in ("provider", "key") else word
    if rest and text_arg is not None:
        found[text_arg.name] = " ".join(rest)
    return found


def named(command: Command, args: dict[str, Any]) -> dict[str, Any]:
    """The declared arguments an invocation carries: words parsed, blanks and unknowns dropped."""
    if "text" in args and not any(arg.name == "text" for arg in command.args):
        return from_words(command, str(args.get("text") or ""))
    declared = command.action(str(args.get("action"))) if command.actions else command
    if declared is None:
        raise UsageError(f"say what to do: {usage(command)}")
    found = {"action": declared.name} if command.actions else {}
    for arg in declared.args:
        value = args.get(arg.name)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        found[arg.name] = value
    return found


def missing(command: Command, args: dict[str, Any]) -> str | None:
    """The first required argument not given, as a sentence; None when all are there."""
    declared = command.action(args.get("action", "")) if command.actions else command
    if declared is None:
        return None
    parent = command.name if command.actions else None
    for arg in declared.args:
        if arg.required and arg.name not in args:
            return f"{usage(declared, parent)} needs a {arg.name} ({arg.description})"
    return None
