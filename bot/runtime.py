"""The durable, fair job runtime (the JobQueue port over SQLite): jobs persist in the index,
workers take them round-robin by user, and every accepted job is answered once.

Mechanism only: what a job does is the worker function bot.app hands it (ChatCommands.run),
and how to reach a chat again after a restart lives in the adapters (port factories).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from imagebot.bot.fair_queue import FairQueue, UserKey
from imagebot.commands.captions import request_failed_text
from imagebot.commands.jobs import Job, job_from_json, job_to_json
from imagebot.commands.ports import QueuedJob, Ticket
from imagebot.commands.requester import Requester
from imagebot.storage.archive import STAGING
from imagebot.storage.index import iso, utc_now
from imagebot.storage.jobs import JobStore

if TYPE_CHECKING:
    from imagebot.commands.ports import ReplyPort, RunningJob
    from imagebot.commands.services import Services

log = logging.getLogger("imagebot.runtime")
PortFactory = Callable[[dict], "ReplyPort"]
Worker = Callable[["RunningJob"], Awaitable[None]]
RPM_WINDOW = 60.0


def user_key(requester: Requester) -> UserKey:
    """Who a job counts against for fairness: the user, or the chat of a scheduled post."""
    # Ids come back from SQLite as text; an adapter may hand over ints. One key for both.
    if requester.user_id is None:
        return (requester.platform, f"chat:{requester.chat_id}")
    return (requester.platform, str(requester.user_id))


@dataclass(eq=False)
class ActiveJob:
    """A job waiting or running in this process (implements commands.ports.RunningJob)."""

    id: str
    job: Job
    requester: Requester
    port: ReplyPort
    result: dict[str, Any] | None = None
    resumed: bool = False  # started by a previous process; the port was rebuilt from `reply`
    seq: int = 0
    answered: bool = False
    _store: JobStore | None = field(default=None, repr=False)
    _cancelled: bool = field(default=False, repr=False)

    @property
    def user(self) -> UserKey:
        return user_key(self.requester)

    @property
    def lane(self) -> str:
        return self.job.lane

    @property
    def provider(self) -> str | None:
        return getattr(self.job, "provider", None)

    def record(self, result: dict[str, Any]) -> None:
        self.result = result
        if self._store is not None:
            self._store.record_result(self.id, result)

    def finish(self, status: str = "done", error: str | None = None) -> None:
        if self._cancelled or self.answered:
            return
        self.answered = True
        if self._store is not None:
            self._store.finish(self.id, status, error=error)


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
        config = services.config
        self.jobs = JobStore(services.index.db)
        default_workers = config.provider_concurrency * len(config.configured)
        self.workers = workers or max(4, default_workers)
        self._clock = clock
        self._factories: dict[str, PortFactory] = {}
        self._worker: Worker | None = None
        self._queue = FairQueue()
        self._running: dict[str, tuple[ActiveJob, asyncio.Task]] = {}
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

    def port_for(self, platform: str, reply: dict[str, Any]) -> ReplyPort | None:
        """A port for a stored address, or None when no adapter of `platform` runs here."""
        factory = self._factories.get(platform)
        return factory(reply) if factory is not None else None

    def set_worker(self, worker: Worker) -> None:
        """What runs each job (bot.app passes ChatCommands.run)."""
        self._worker = worker

    # ---------------------------------------------------------------- life cycle

    async def start(self) -> None:
        """Resume jobs a previous process left accepted or running, then start working."""
        self._stopping = False
        known = {job.id for job in self._queue.jobs()} | set(self._running)
        index = self.services.index
        for row in self.jobs.unfinished(sorted(self._factories)):
            if row["id"] in known:
                continue
            for batch_id in index.fail_rendering_batches(row["id"], "interrupted"):
                self.services.archive.discard(self.services.archive.root / STAGING / batch_id)
            if row["status"] == "running":
                self.jobs.requeue(row["id"])
            try:
                port = self._factories[row["platform"]](row["reply"])
                active = self._active(row, port, resumed=True)
            except Exception:
                log.exception("cannot resume job %s; left queued", row["id"])
                continue
            self._queue.push(active)
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
        """Wait until no job is waiting or running (tests, benches, `imagebot daily --once`)."""
        while self._running or len(self._queue):
            self._changed.clear()
            await self._changed.wait()

    # ---------------------------------------------------------------- JobQueue

    async def submit(
        self, job: Job, requester: Requester, reply: dict[str, Any], port: ReplyPort
    ) -> Ticket:
        """Persist the job as accepted, queue it; its place (0 = starting now)."""
        job_id = uuid.uuid4().hex[:16]
        row = {
            "id": job_id,
            "kind": job.kind,
            "provider": getattr(job, "provider", None),
            "image_count": job.image_count,
            "payload": job_to_json(job),
            "reply": reply,
            "created_at": iso(utc_now()),
            **requester.row(),
        }
        self.jobs.add(row)
        self._seq += 1
        self._queue.push(ActiveJob(job_id, job, requester, port, seq=self._seq, _store=self.jobs))
        self._dispatch()
        if job_id in self._running:
            return Ticket(job_id, 0)
        place = next((place for active, place in self._queue.order() if active.id == job_id), 0)
        return Ticket(job_id, place)

    def places(self, requester: Requester) -> list[tuple[str, int]]:
        user = user_key(requester)
        places = [(job_id, 0) for job_id, (job, _) in self._running.items() if job.user == user]
        places += [(job.id, place) for job, place in self._queue.order() if job.user == user]
        return places

    def get(self, job_id: str) -> QueuedJob | None:
        row = self.jobs.get(job_id)
        if row is None:
            return None
        return QueuedJob(row["id"], job_from_json(row["kind"], row["payload"]),
                         _requester(row), row["status"])  # fmt: skip

    def images_used(self, requester: Requester, since: datetime) -> int:
        return self.jobs.images_since(requester.platform, requester.user_id, since)

    async def cancel(self, requester: Requester) -> int:
        user = user_key(requester)
        waiting = self._queue.remove_user(user)
        for job in waiting:
            self.jobs.finish(job.id, "cancelled", error="cancelled by the user")
        tasks = []
        for job, task in list(self._running.values()):
            if job.user == user and not job.answered:
                job._cancelled = True
                self.jobs.finish(job.id, "cancelled", error="cancelled by the user")
                task.cancel("cancelled")  # the batch's recorded reason
                tasks.append(task)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._changed.set()
        self._dispatch()
        return len(waiting) + len(tasks)

    def result_of(self, job_id: str) -> dict[str, Any] | None:
        """What a job recorded (the batches it archived), once it ran."""
        row = self.jobs.get(job_id)
        return row["result"] if row else None

    # ---------------------------------------------------------------- scheduling

    def _active(self, row: dict[str, Any], port: ReplyPort, resumed: bool = False) -> ActiveJob:
        self._seq += 1
        return ActiveJob(
            id=row["id"],
            job=job_from_json(row["kind"], row.get("payload") or {}),
            requester=_requester(row),
            port=port,
            result=row.get("result"),
            resumed=resumed,
            seq=self._seq,
            _store=self.jobs,
        )

    def _lane_wait(self, lane: str, provider: str | None) -> float | None:
        """None when a job of `lane` may start now, else seconds until it might."""
        config = self.services.config
        busy = sum(1 for job, _ in self._running.values() if job.lane == lane)
        if busy >= config.provider_concurrency:
            return float("inf")
        if provider is None or config.provider_rpm <= 0:
            return None
        starts = self._starts.setdefault(lane, deque())
        now = self._clock()
        while starts and now - starts[0] >= RPM_WINDOW:
            starts.popleft()
        if len(starts) < config.provider_rpm:
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

            def may_start(job: ActiveJob, blocked: dict[str, float] = blocked) -> bool:
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

    def _start(self, job: ActiveJob) -> None:
        self.jobs.mark_running(job.id)
        self._queue.served(job.user)
        if job.provider is not None:
            self._starts.setdefault(job.lane, deque()).append(self._clock())
        task = asyncio.create_task(self._run(job), name=f"job-{job.id}")
        self._running[job.id] = (job, task)

    async def _run(self, job: ActiveJob) -> None:
        try:
            if self._worker is None:
                raise RuntimeError("the runtime has no worker function")
            await self._worker(job)
            job.finish("done")
        except asyncio.CancelledError:
            if job._cancelled:
                self.services.index.fail_rendering_batches(job.id, "cancelled")
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

    async def _answer_failure(self, job: ActiveJob, exc: Exception) -> None:
        if job.answered or job._cancelled:
            return
        scheduled = getattr(job.job, "schedule", None) is not None
        try:
            await job.port.text(request_failed_text(exc, scheduled=scheduled))
        except Exception:
            log.exception("could not tell the user of job %s that it failed", job.id)
            self.jobs.finish(job.id, "failed", error=str(exc), answered=False)
            job.answered = True
            return
        job.finish("failed", str(exc))


def _requester(row: dict[str, Any]) -> Requester:
    return Requester(
        platform=row["platform"],
        user_id=row.get("user_id"),
        user_name=row.get("user_name"),
        chat_id=row.get("chat_id"),
        guild_id=row.get("guild_id"),
    )
