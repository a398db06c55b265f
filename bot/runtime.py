"""The durable, fair job runtime: jobs persist in SQLite, workers take them round-robin by user.

Mechanism only: what a job does lives in commands/ (handlers registered per job kind), and
how to reach a chat again after a restart lives in the adapters (port factories per platform).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from imagebot.bot.fair_queue import FairQueue, UserKey
from imagebot.commands.requester import Requester
from imagebot.storage.archive import STAGING
from imagebot.storage.index import iso, utc_now
from imagebot.storage.jobs import JobStore

if TYPE_CHECKING:
    from imagebot.commands.invocation import Invocation
    from imagebot.commands.ports import ReplyPort
    from imagebot.commands.services import Services

log = logging.getLogger("imagebot.runtime")
PortFactory = Callable[[dict], "ReplyPort"]
RPM_WINDOW = 60.0


@dataclass(eq=False)
class Job:
    """One queued request as a handler sees it: who, what, where to answer, what came before."""

    id: str
    kind: str
    requester: Requester
    provider: str | None
    image_count: int
    payload: dict[str, Any]
    reply: dict[str, Any]
    port: ReplyPort
    result: dict[str, Any] | None = None
    resumed: bool = False  # started by a previous process; the port was rebuilt from `reply`
    seq: int = 0
    answered: bool = False
    _store: JobStore | None = field(default=None, repr=False)
    _cancelled: bool = field(default=False, repr=False)

    @property
    def user(self) -> UserKey:
        return user_key(self.requester.platform, self.requester.user_id)

    @property
    def lane(self) -> str:
        """What caps this job: its image provider, or its kind for jobs that render nothing."""
        return self.provider or self.kind

    def record(self, result: dict[str, Any]) -> None:
        """Persist what the job made before answering, so a resume answers without redoing it."""
        self.result = result
        if self._store is not None:
            self._store.record_result(self.id, result)

    def finish(self, status: str = "done", error: str | None = None) -> None:
        """Mark the job answered; call right after the reply was confirmed."""
        if self._cancelled or self.answered:
            return
        self.answered = True
        if self._store is not None:
            self._store.finish(self.id, status, error=error)


JobHandler = Callable[[Job], Awaitable[None]]


def user_key(platform: str, user_id: object) -> UserKey:
    # Ids come back from SQLite as text; an adapter may hand over ints. One key for both.
    return (platform, None if user_id is None else str(user_id))


class Runtime:
    """Queue, workers, fairness, caps, cancel, and resume after a restart."""

    def __init__(
        self,
        services: Services,
        *,
        workers: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.services = services
        settings = services.settings
        self.jobs = JobStore(services.index.db)
        default_workers = settings.provider_concurrency * len(settings.configured_providers())
        self.workers = workers or max(4, default_workers)
        self._clock = clock
        self._factories: dict[str, PortFactory] = {}
        self._handlers: dict[str, JobHandler] = {}
        self._queue = FairQueue()
        self._running: dict[str, tuple[Job, asyncio.Task]] = {}
        self._starts: dict[str, deque[float]] = {}
        self._seq = 0
        self._started = False
        self._stopping = False
        self._changed = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None

    # ---------------------------------------------------------------- wiring

    def register_platform(self, platform: str, port_factory: PortFactory) -> None:
        """How to rebuild a reply port from a job's stored `reply` address after a restart."""
        self._factories[platform] = port_factory

    @property
    def port_factories(self) -> dict[str, PortFactory]:
        """The registered platforms' port factories (the daily scheduler posts through them)."""
        return dict(self._factories)

    def register_handler(self, kind: str, handler: JobHandler) -> None:
        """What a job of `kind` does (commands/ registers generate and prompts)."""
        self._handlers[kind] = handler

    # ---------------------------------------------------------------- life cycle

    async def start(self) -> None:
        """Resume jobs a previous process left accepted or running, then start working."""
        self._stopping = False
        known = {job.id for job in self._queue.jobs()} | set(self._running)
        for row in self.jobs.unfinished(sorted(self._factories)):
            if row["id"] in known:
                continue
            for batch_id in self.jobs.fail_unfinished_batches(row["id"], "interrupted"):
                self.services.archive.discard(self.services.archive.root / STAGING / batch_id)
            if row["status"] == "running":
                self.jobs.requeue(row["id"])
            try:
                port = self._factories[row["platform"]](row["reply"])
            except Exception:
                log.exception("cannot rebuild the reply port of job %s; left queued", row["id"])
                continue
            self._queue.push(self._job_from_row(row, port, resumed=True))
        self._started = True
        self._dispatch()

    async def stop(self) -> None:
        """Stop gracefully: interrupted running jobs go back to 'accepted' for the next start."""
        self._stopping = True
        self._started = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        tasks = [task for _, task in self._running.values()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._queue.clear()
        self._changed.set()

    async def drain(self) -> None:
        """Wait until no job is waiting or running (tests and benches)."""
        while self._running or len(self._queue):
            self._changed.clear()
            await self._changed.wait()

    # ---------------------------------------------------------------- requests

    async def submit(self, invocation: Invocation, job: dict[str, Any], port: ReplyPort) -> int:
        """Persist the job as accepted, queue it; returns its place (0 = starting now)."""
        requester = invocation.requester
        job_id = uuid.uuid4().hex[:16]
        row = {
            "id": job_id,
            "kind": job["kind"],
            "provider": job.get("provider"),
            "image_count": int(job.get("image_count") or 0),
            "payload": job.get("payload") or {},
            "reply": invocation.reply,
            "created_at": iso(utc_now()),
            **requester.row(),
        }
        self.jobs.add(row)
        entry = self._job_from_row({**row, "result": None, "attempts": 0}, port)
        self._queue.push(entry)
        self._dispatch()
        if job_id in self._running:
            return 0
        return next((place for job, place in self._queue.order() if job.id == job_id), 0)

    def position(self, platform: str, user_id: str | None) -> list[tuple[str, int]]:
        """The user's jobs and their places: 0 = running now, 1 = next to start, ..."""
        user = user_key(platform, user_id)
        places = [(job_id, 0) for job_id, (job, _) in self._running.items() if job.user == user]
        places += [(job.id, place) for job, place in self._queue.order() if job.user == user]
        return places

    async def cancel(self, platform: str, user_id: str | None) -> int:
        """Cancel the user's waiting and running jobs; returns how many were cancelled."""
        user = user_key(platform, user_id)
        waiting = self._queue.remove_user(user)
        for job in waiting:
            self.jobs.finish(job.id, "cancelled", error="cancelled by the user")
        tasks = []
        for job, task in list(self._running.values()):
            if job.user == user and not job.answered:
                job._cancelled = True
                self.jobs.finish(job.id, "cancelled", error="cancelled by the user")
                task.cancel()
                tasks.append(task)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._changed.set()
        self._dispatch()
        return len(waiting) + len(tasks)

    # ---------------------------------------------------------------- scheduling

    def _job_from_row(self, row: dict[str, Any], port: ReplyPort, resumed: bool = False) -> Job:
        self._seq += 1
        return Job(
            id=row["id"],
            kind=row["kind"],
            requester=Requester(
                platform=row["platform"],
                user_id=row.get("user_id"),
                user_name=row.get("user_name"),
                chat_id=row.get("chat_id"),
                guild_id=row.get("guild_id"),
            ),
            provider=row.get("provider"),
            image_count=int(row.get("image_count") or 0),
            payload=row.get("payload") or {},
            reply=row.get("reply") or {},
            port=port,
            result=row.get("result"),
            resumed=resumed,
            seq=self._seq,
            _store=self.jobs,
        )

    def _lane_wait(self, lane: str, provider: str | None) -> float | None:
        """None when a job of `lane` may start now, else seconds until it might."""
        settings = self.services.settings
        busy = sum(1 for job, _ in self._running.values() if job.lane == lane)
        if busy >= settings.provider_concurrency:
            return float("inf")
        if provider is None or settings.provider_rpm <= 0:
            return None
        starts = self._starts.setdefault(lane, deque())
        now = self._clock()
        while starts and now - starts[0] >= RPM_WINDOW:
            starts.popleft()
        if len(starts) < settings.provider_rpm:
            return None
        return RPM_WINDOW - (now - starts[0])

    def _dispatch(self) -> None:
        """Start what may start: free workers, one job per user, lanes under their caps."""
        if not self._started or self._stopping:
            return
        busy_users = {job.user for job, _ in self._running.values()}
        wake: float | None = None
        while len(self._running) < self.workers:
            blocked: dict[str, float] = {}

            def may_start(job: Job, blocked: dict[str, float] = blocked) -> bool:
                if job.lane not in blocked:
                    wait = self._lane_wait(job.lane, job.provider)
                    blocked[job.lane] = 0.0 if wait is None else wait
                return blocked[job.lane] == 0.0

            job = self._queue.pop_next(busy_users, may_start)
            finite = [w for w in blocked.values() if 0 < w < float("inf")]
            if finite:
                wake = min(finite) if wake is None else min(wake, *finite)
            if job is None:
                break
            busy_users.add(job.user)
            self._start(job)
        self._schedule_wake(wake)

    def _schedule_wake(self, delay: float | None) -> None:
        # A job held back only by the requests-per-minute cap must start without a new event.
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if delay is not None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(delay + 0.01, self._dispatch)

    def kick(self) -> None:
        """Re-check what can start now (e.g. after the injected clock moved on)."""
        self._dispatch()

    def _start(self, job: Job) -> None:
        self.jobs.mark_running(job.id)
        self._queue.served(job.user)
        if job.provider is not None:
            self._starts.setdefault(job.lane, deque()).append(self._clock())
        task = asyncio.create_task(self._run(job), name=f"job-{job.id}")
        self._running[job.id] = (job, task)

    async def _run(self, job: Job) -> None:
        try:
            handler = self._handlers.get(job.kind)
            if handler is None:
                raise RuntimeError(f"no handler for jobs of kind {job.kind!r}")
            await handler(job)
            job.finish("done")
        except asyncio.CancelledError:
            if job._cancelled:
                self.jobs.fail_unfinished_batches(job.id, "cancelled")
            elif not job.answered:
                self.jobs.requeue(job.id)  # stop(): resumed by the next start
            raise
        except Exception as exc:
            log.exception("job %s failed", job.id)
            await self._answer_failure(job, exc)
        finally:
            self._running.pop(job.id, None)
            self._changed.set()
            self._dispatch()

    async def _answer_failure(self, job: Job, exc: Exception) -> None:
        if job.answered or job._cancelled:
            return
        message = f"Sorry, your request failed: {exc}"
        try:
            await job.port.text(message)
        except Exception:
            log.exception("could not tell the user of job %s that it failed", job.id)
            self.jobs.finish(job.id, "failed", error=str(exc), answered=False)
            job.answered = True
            return
        job.finish("failed", str(exc))
