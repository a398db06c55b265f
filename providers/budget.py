"""Time budgets for self-hosted renderers: one deadline per job, shared by every retry.

A hung server used to cost attempts x timeout per image (3 x 600 s). Here a job gets one total
budget sized to its work, each attempt gets what is left of it, and retries stop when it is spent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from imagebot.providers.base import Unavailable
from imagebot.providers.http_errors import backoff_delay

T = TypeVar("T")

CONNECT_TIMEOUT = 10.0  # a server on the LAN accepts a connection in milliseconds
ANSWER_TIMEOUT = 20.0  # an info or progress call with no first byte by then: the server is stuck
HANG_TIMEOUT = 60.0  # no answer at all for this long while a render is open: give up on it
BASE_BUDGET = 120.0  # start-up, model load and queueing of one job
SECONDS_PER_UNIT = 60.0  # one 512x512 image at 20 steps on a slow GPU, generously
MAX_BUDGET = 1800.0
# Assumption (the fakes model it too): a batch of n on one GPU costs about 1 + 0.4 (n - 1) single
# images, because the fixed work of a job (model and sampler set-up, step scheduling, VAE and
# transfer overheads) is shared and a GPU with spare width runs the extra latents in parallel.
BATCH_FACTOR = 0.4


def _secs(value: float) -> str:
    return f"{value:.0f} s" if value >= 10 else f"{value:.1f} s"


def batch_cost(count: int) -> float:
    """Single-image units of work of one batched request of `count` images."""
    return 1.0 + BATCH_FACTOR * max(count - 1, 0)


def render_budget(width: int, height: int, steps: int | None, count: int) -> float:
    """A total time budget that fits the job: grows with pixels, steps and batch size."""
    units = (width * height) / (512 * 512) * max(steps or 20, 1) / 20 * batch_cost(count)
    return min(BASE_BUDGET + SECONDS_PER_UNIT * units, MAX_BUDGET)


@dataclass
class Budget:
    """A deadline on the monotonic clock; `left()` is what an attempt may still spend."""

    seconds: float
    clock: Callable[[], float] = time.monotonic
    started: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def left(self) -> float:
        return max(self.seconds - (self.clock() - self.started), 0.0)

    def spent(self) -> float:
        return self.clock() - self.started

    @property
    def expired(self) -> bool:
        return self.left() <= 0.0


async def retry_within(
    call: Callable[[], Awaitable[T]],
    budget: Budget,
    *,
    attempts: int = 3,
    base_delay: float = 0.5,
    provider: str,
    what: str,
) -> T:
    """Run `call`, retrying Unavailable failures while attempts and `budget` last.

    The whole run (every attempt, every back-off) stays within the budget: an attempt is cut
    off when the budget ends, and the last failure says so.
    """
    last: Unavailable | None = None
    for attempt in range(attempts):
        if budget.expired:
            break
        try:
            async with asyncio.timeout(budget.left()):
                return await call()
        except TimeoutError:
            if not budget.expired:  # a time-out inside the call, not ours: worth a retry
                last = Unavailable(provider, f"{what} timed out")
                continue
            last = Unavailable(
                provider, f"{what} did not finish within its {_secs(budget.seconds)} budget"
            )
            break
        except Unavailable as exc:
            last = exc
            if attempt == attempts - 1:
                break
            delay = backoff_delay(attempt, exc.retry_after, base_delay)
            if delay >= budget.left():
                break  # waiting would spend the rest of the budget: report now
            await asyncio.sleep(delay)
    if last is None:
        last = Unavailable(
            provider, f"{what} had no time left in its {_secs(budget.seconds)} budget"
        )
    raise last
