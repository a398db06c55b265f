"""Text hygiene for everything a user or an LLM wrote (SPEC §4): no control characters, no
bidirectional overrides, reaching files, replies or a terminal."""

from __future__ import annotations

import re
import unicodedata

# C0 (but newline and tab, handled below), DEL, C1, and the bidirectional controls that can
# reorder what a reader sees (embeddings, overrides, isolates, marks).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_SPACES = re.compile(r"[ \t]+")


def clean(text: str | None, *, newlines: bool = False) -> str:
    """`text` without control characters; newlines kept only when `newlines` (descriptions),
    tabs and runs of spaces folded to one space."""
    if not text:
        return ""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _UNSAFE.sub("", text)
    if not newlines:
        text = text.replace("\n", " ")
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return "\n".join(lines).strip()


def has_word(text: str) -> bool:
    """Whether `text` has at least one letter or digit (in any script)."""
    return any(unicodedata.category(char)[0] in "LN" for char in text)
