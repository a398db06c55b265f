"""A quiet progress bar for terminals (nothing at all when output is not a terminal)."""

from __future__ import annotations

import time
from typing import TextIO

WIDTH = 24


class ProgressBar:
    """`label [#####-----] 3/8` redrawn in place, at most ten times a second."""

    def __init__(self, label: str, stream: TextIO):
        self.label = label
        self.stream = stream
        self.enabled = stream.isatty()
        self._last_draw = 0.0
        self._drawn = False

    def update(self, done: int, total: int) -> None:
        if not self.enabled or total <= 0:
            return
        now = time.monotonic()
        if done < total and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        filled = WIDTH * done // total
        bar = "#" * filled + "-" * (WIDTH - filled)
        self.stream.write(f"\r{self.label} [{bar}] {done}/{total}")
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
