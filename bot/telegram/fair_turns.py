"""Whose turn it is at one group's send budget: waiting senders served round-robin by requester.

A group may take 20 messages a minute. When sends wait for that budget, a plain FIFO lets one
member's flood (refusals, progress messages, 10-image albums) push another member's single post
behind all of it; here each requester waits in their own line and the lines take turns.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Hashable


class RoundRobinTurns:
    """One turn at a time; the next goes to the requester after the one who had it last."""

    def __init__(self) -> None:
        # Insertion order is the round: the front requester has the next turn.
        self._lines: dict[Hashable, deque[asyncio.Future[None]]] = {}
        self._holder: Hashable | None = None
        self._busy = False

    def waiting(self) -> dict[Hashable, int]:
        """How many sends of each requester wait for a turn (not counting the one holding it)."""
        return {who: len(line) for who, line in self._lines.items() if line}

    @contextlib.asynccontextmanager
    async def turn(self, who: Hashable) -> AsyncIterator[None]:
        """Hold the turn for `who` (after every other waiting requester's next send, at most)."""
        if self._busy or self._lines:
            granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._lines.setdefault(who, deque()).append(granted)
            try:
                await granted
            except asyncio.CancelledError:
                if granted.done() and not granted.cancelled():
                    self._pass_on()  # it was ours as we were cancelled: hand it to the next
                else:
                    self._forget(who, granted)
                raise
        else:
            self._busy = True
        self._holder = who
        try:
            yield
        finally:
            self._pass_on()

    def _forget(self, who: Hashable, granted: asyncio.Future[None]) -> None:
        line = self._lines.get(who)
        if line is not None:
            with contextlib.suppress(ValueError):
                line.remove(granted)
            if not line:
                del self._lines[who]

    def _pass_on(self) -> None:
        holder, self._holder = self._holder, None
        if holder in self._lines:  # the requester just served goes to the back of the round
            self._lines[holder] = self._lines.pop(holder)
        while self._lines:
            who = next(iter(self._lines))
            line = self._lines.pop(who)
            granted = line.popleft()
            if line:
                self._lines[who] = line
            if not granted.done():
                granted.set_result(None)
                return
        self._busy = False
