"""Banned words and patterns, checked on what users type and on what the LLM writes.

Matching sees through disguises: NFKC (fullwidth letters), case folding, zero-width and other
format characters removed, and look-alike letters (Cyrillic `о`, Latin script `ɡ`) read as
their ASCII skeleton. `/regex/` entries run on RE2, whose time is linear in the text: a
pattern that would backtrack catastrophically cannot stall the bot.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

from imagebot.providers.base import ConfigError

WORDS = re.compile(r"\w+")  # linear: no nested quantifiers


class BannedPatterns:
    """The compiled IMAGEBOT_BANNED_WORDS: plain words/phrases, and RE2 patterns."""

    def __init__(self, entries: tuple[str, ...]):
        import re2

        options = re2.Options()
        options.log_errors = False  # a refused pattern is reported once, by us
        options.case_sensitive = False
        self.phrases: list[tuple[str, str]] = []
        self.patterns: list[tuple[str, object]] = []
        for entry in entries:
            if len(entry) > 2 and entry.startswith("/") and entry.endswith("/"):
                try:
                    self.patterns.append((entry, re2.compile(entry[1:-1], options=options)))
                except re2.error as exc:
                    message = exc.args[0].decode() if isinstance(exc.args[0], bytes) else exc
                    raise ConfigError(
                        f"IMAGEBOT_BANNED_WORDS has a pattern {entry!r} that cannot be matched "
                        f"in bounded time ({message}); use a pattern without backreferences "
                        "or lookarounds"
                    ) from None
            else:
                phrase = " ".join(_words(entry))
                if phrase:
                    self.phrases.append((entry, phrase))

    def match(self, text: str) -> str | None:
        """The first entry found in `text` (or in its disguise-free forms), else None."""
        for form in _forms(text):
            spaced = f" {' '.join(_words(form))} "
            for entry, phrase in self.phrases:
                if f" {phrase} " in spaced:
                    return entry
            for entry, pattern in self.patterns:
                if pattern.search(form):  # type: ignore[attr-defined]
                    return entry
        return None


def _words(text: str) -> list[str]:
    return WORDS.findall(text.casefold())


def _forms(text: str) -> list[str]:
    """The text as typed, NFKC-folded without format characters, and its ASCII skeleton."""
    from anyascii import anyascii

    folded = unicodedata.normalize("NFKC", text)
    folded = "".join(c for c in folded if unicodedata.category(c) != "Cf").casefold()
    return [text, folded, anyascii(folded).lower()]


@lru_cache(maxsize=64)
def compiled(entries: tuple[str, ...]) -> BannedPatterns:
    """The entries compiled once (ConfigError for a pattern that cannot be bounded)."""
    return BannedPatterns(entries)


def banned_match(texts: Iterable[str | None], entries: tuple[str, ...]) -> str | None:
    """The first banned word or pattern found in any of `texts`, else None."""
    if not entries:
        return None
    patterns = compiled(entries)
    for text in texts:
        if text:
            found = patterns.match(text)
            if found:
                return found
    return None
