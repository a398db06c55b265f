"""A pool of interchangeable servers (one GPU each): least-busy choice, cool-off, fail-over.

Generic on purpose: it knows base URLs and which failures mean "this server is down", nothing
about the protocol spoken to them. The WebUI and ComfyUI providers share it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar

from imagebot.providers.base import Unavailable

T = TypeVar("T")

DEFAULT_COOLOFF = 30.0
MAX_COOLOFF = 600.0


@dataclass
class ServerState:
    """What the pool knows about one server."""

    url: str
    in_flight: int = 0
    failures: int = 0  # consecutive; resets on a success
    down_until: float = 0.0
    served: int = 0

    def is_up(self, now: float) -> bool:
        return now >= self.down_until


def _is_server_failure(exc: BaseException) -> bool:
    return isinstance(exc, Unavailable)


class ServerPool:
    """Base URLs of equivalent servers; lease the least busy healthy one for each call."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        cooloff: float = DEFAULT_COOLOFF,
        max_cooloff: float = MAX_COOLOFF,
        is_failure: Callable[[BaseException], bool] = _is_server_failure,
        clock: Callable[[], float] = time.monotonic,
    ):
        if not urls:
            raise ValueError("a server pool needs at least one URL")
        self._servers = [ServerState(url) for url in dict.fromkeys(urls)]
        self._cooloff = cooloff
        self._max_cooloff = max_cooloff
        self._is_failure = is_failure
        self._clock = clock
        self._turn = 0  # rotates ties so equally idle servers share the work

    @property
    def urls(self) -> list[str]:
        return [server.url for server in self._servers]

    def __len__(self) -> int:
        return len(self._servers)

    def in_flight(self, url: str) -> int:
        """Calls of this process open on `url` now."""
        return self._state(url).in_flight

    def healthy(self) -> list[str]:
        """URLs not in a cool-off now."""
        now = self._clock()
        return [server.url for server in self._servers if server.is_up(now)]

    def _pick(self, exclude: set[str]) -> ServerState | None:
        candidates = [s for s in self._servers if s.url not in exclude]
        if not candidates:
            return None
        now = self._clock()
        up = [s for s in candidates if s.is_up(now)]
        if not up:
            # Every server is cooling off: probe the one that comes back soonest rather than
            # refuse outright, since a whole pool marked down is often one network blip.
            return min(candidates, key=lambda s: s.down_until)
        fewest = min(s.in_flight for s in up)
        tied = [s for s in up if s.in_flight == fewest]
        order = {s.url: i for i, s in enumerate(self._servers)}
        count = len(self._servers)
        chosen = min(tied, key=lambda s: (order[s.url] - self._turn) % count)
        self._turn = (order[chosen.url] + 1) % count
        return chosen

    def mark_down(self, url: str) -> None:
        """Put `url` in cool-off; each failed probe after a cool-off doubles the wait."""
        server = self._state(url)
        now = self._clock()
        if not server.is_up(now):
            return  # other calls in flight when it went down: one outage, not several
        server.failures += 1
        wait = min(self._cooloff * 2 ** (server.failures - 1), self._max_cooloff)
        server.down_until = now + wait

    def mark_up(self, url: str) -> None:
        """A call to `url` succeeded: it is healthy again and its back-off resets."""
        server = self._state(url)
        server.failures = 0
        server.down_until = 0.0
        server.served += 1

    def _state(self, url: str) -> ServerState:
        for server in self._servers:
            if server.url == url:
                return server
        raise KeyError(url)

    @asynccontextmanager
    async def lease(self, exclude: set[str] | None = None) -> AsyncIterator[str]:
        """Yield the least busy healthy server's URL; a server failure puts it in cool-off."""
        server = self._pick(exclude or set())
        if server is None:
            raise LookupError("every server in the pool was excluded")
        server.in_flight += 1
        try:
            yield server.url
        except BaseException as exc:
            if self._is_failure(exc):
                self.mark_down(server.url)
            raise
        else:
            self.mark_up(server.url)
        finally:
            server.in_flight -= 1

    async def run(self, call: Callable[[str], Awaitable[T]]) -> T:
        """`await call(url)` on the best server, failing over until one succeeds.

        Each server is tried at most once; other errors (bad request, refused prompt) pass
        through at once, since another server would answer the same. Raises the last server
        failure when every server failed.
        """
        tried: set[str] = set()
        last: BaseException | None = None
        while len(tried) < len(self._servers):
            try:
                async with self.lease(exclude=tried) as url:
                    tried.add(url)
                    return await call(url)
            except BaseException as exc:
                if not self._is_failure(exc):
                    raise
                last = exc
        assert last is not None
        raise last
