"""Run an async fake server on its own loop in a thread, for sync callers (CLI tests, benches)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any


class FakeOnThread:
    """Run an async fake server (an async context manager) on its own loop in a thread."""

    def __init__(self, factory: Callable[[], Any]):
        self._factory = factory
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.fake: Any = None

    def __enter__(self) -> Any:
        self._thread.start()
        self.fake = self._factory()
        asyncio.run_coroutine_threadsafe(self.fake.__aenter__(), self._loop).result(30)
        return self.fake

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.fake.__aexit__(None, None, None), self._loop).result(
            30
        )
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
