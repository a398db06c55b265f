"""Banned words and patterns, checked on what users type and on what the LLM writes."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache


@lru_cache(maxsize=64)
def _compile(patterns: tuple[str, ...]) -> list[tuple[str, re.Pattern[str]]]:
    compiled = []
    for pattern in patterns:
        if len(pattern) > 2 and pattern.startswith("/") and pattern.endswith("/"):
            regex = re.compile(pattern[1:-1], re.IGNORECASE)
        else:
            regex = re.compile(rf"(?<!\w){re.escape(pattern)}(?!\w)", re.IGNORECASE)
        compiled.append((pattern, regex))
    return compiled


def banned_match(texts: Iterable[str | None], patterns: tuple[str, ...]) -> str | None:
    """The first banned word or pattern found in any of `texts`, else None."""
    if not patterns:
        return None
    for text in texts:
        if not text:
            continue
        for pattern, regex in _compile(patterns):
            if regex.search(text):
                return pattern
    return None
