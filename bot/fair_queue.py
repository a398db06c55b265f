"""Round-robin by user: the next job is the oldest job of the user served least recently."""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from imagebot.bot.runtime import ActiveJob as Job

UserKey = tuple[str, "str | None"]  # (platform, user_id)


class FairQueue:
    """Waiting jobs, one FIFO per user; one user's flood never delays another's first job."""

    def __init__(self) -> None:
        self._queues: dict[UserKey, deque[Job]] = {}
        self._last_served: dict[UserKey, int] = {}
        self._tick = 0

    def __len__(self) -> int:
        return sum(len(queue) for queue in self._queues.values())

    def push(self, job: Job) -> None:
        self._queues.setdefault(job.user, deque()).append(job)

    def jobs(self) -> list[Job]:
        return [job for queue in self._queues.values() for job in queue]

    def clear(self) -> None:
        self._queues.clear()

    def remove_user(self, user: UserKey) -> list[Job]:
        """Take every waiting job of `user` out of the queue."""
        return list(self._queues.pop(user, ()))

    def served(self, user: UserKey) -> None:
        """Note that a job of `user` just started: they go to the back of the round."""
        self._tick += 1
        self._last_served[user] = self._tick

    def _rank(self, users: Iterable[UserKey], last: dict[UserKey, int]) -> list[UserKey]:
        # Never served ranks first (0); ties go to the user whose oldest job is oldest.
        return sorted(users, key=lambda user: (last.get(user, 0), self._queues[user][0].seq))

    def pop_next(self, busy: set[UserKey], may_start: Callable[[Job], bool]) -> Job | None:
        """The next job to start, skipping users already running one and full lanes."""
        ready = [user for user, queue in self._queues.items() if queue and user not in busy]
        for user in self._rank(ready, self._last_served):
            queue = self._queues[user]
            if may_start(queue[0]):
                job = queue.popleft()
                if not queue:
                    del self._queues[user]
                return job
        return None

    def order(self) -> list[tuple[Job, int]]:
        """Every waiting job with its place (1 = next), as the round-robin would serve them."""
        # A heap of each user's next job, ranked as pop_next ranks users: every submit asks for
        # its place, and a min() over all users per place made a burst of n users cost O(n³).
        heap = [
            (self._last_served.get(user, 0), queue[0].seq, user, 0)
            for user, queue in self._queues.items()
            if queue
        ]
        heapq.heapify(heap)
        tick = self._tick
        places: list[tuple[Job, int]] = []
        while heap:
            _, _, user, index = heapq.heappop(heap)
            queue = self._queues[user]
            places.append((queue[index], len(places) + 1))
            tick += 1
            if index + 1 < len(queue):
                heapq.heappush(heap, (tick, queue[index + 1].seq, user, index + 1))
        return places
