"""Load on the chat runtime (issue 3): 200 users ask `/generate 4` at once, 16 renders at a time.

The product side (Services + Runtime + ChatCommands, answering on timed ports) runs in a child
process so its peak memory is its own; 16 FakeWebUI servers (one simulated GPU each, 500 ms per
image) run on a thread of this process. Imported by bench_discord.py, which prints the table.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import ROOT, FakeOnThread, clean_env, line

USERS = 200
COUNT = 4
SERVERS = 16
LATENCY = 0.5
SIZE = "64x64"
CAP_RATE = SERVERS / LATENCY  # images per second the provider cap allows


class WebUIFleet:
    """SERVERS FakeWebUI servers started and stopped together (one GPU each)."""

    def __init__(self, count: int, latency: float):
        from tests.fakes.webui_server import FakeWebUI

        self.servers = [FakeWebUI(latency=latency) for _ in range(count)]

    async def __aenter__(self) -> WebUIFleet:
        for server in self.servers:
            await server.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for server in self.servers:
            await server.stop()

    @property
    def urls(self) -> str:
        return ",".join(server.url for server in self.servers)


class TimedPort:
    """A ReplyPort that stamps every call (perf_counter) and counts answers."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, str, str]] = []

    def _add(self, method: str, text: str = "") -> None:
        self.calls.append((time.perf_counter(), method, text))

    async def acknowledge(self, *, private: bool = False) -> None:
        self._add("acknowledge")

    async def progress(self, text: str, preview: bytes | None = None) -> None:
        self._add("progress", text)

    async def text(self, text: str, *, private: bool = False) -> None:
        self._add("private" if private else "text", text)

    async def images(self, post: Any) -> None:
        self._add("images", str(len(post.images)))

    async def file(self, name: str, data: bytes, text: str, *, private: bool = False) -> None:
        self._add("file", text)

    async def delete_post(self) -> None:
        self._add("delete_post")

    def first(self, method: str) -> float | None:
        return next((t for t, m, _ in self.calls if m == method), None)

    def images_posted(self) -> int:
        return sum(int(text) for _, method, text in self.calls if method == "images")

    def answers(self) -> int:
        """Answers a user would see for the job: posted batches and public failure texts."""
        return sum(1 for _, m, _ in self.calls if m in ("images", "text"))


async def run_child(env: dict[str, str]) -> dict[str, Any]:
    """The product under load; returns raw timings for the parent to summarise."""
    from imagebot.bot.app import build_services
    from imagebot.bot.runtime import Runtime
    from imagebot.bot.settings import Settings
    from imagebot.commands.chat import ChatCommands
    from imagebot.commands.invocation import Invocation
    from imagebot.commands.requester import Requester

    started: list[tuple[float, str]] = []

    class TimedRuntime(Runtime):
        # Observes when each job is handed to a worker; the scheduling itself is untouched.
        def _start(self, job: Any) -> None:
            started.append((time.perf_counter(), str(job.requester.user_id)))
            super()._start(job)

    settings = Settings.from_env(environ=env, dotenv_path=None)
    services = build_services(settings)
    runtime = TimedRuntime(services)
    chat = ChatCommands(services, runtime)
    runtime.set_worker(chat.run)
    await runtime.start()
    ports = {str(n): TimedPort() for n in range(USERS)}

    def invocation(user: str) -> Invocation:
        args = {"count": COUNT, "size": SIZE, "provider": "stable-diffusion"}
        requester = Requester("discord", user, f"user{user}", "100", "7")
        return Invocation(requester, "generate", args, reply={"user": user})

    t0 = time.perf_counter()
    await asyncio.gather(*(chat.handle(invocation(u), port) for u, port in ports.items()))
    submitted = time.perf_counter()
    await runtime.drain()
    finished = time.perf_counter()
    jobs = list(services.index.db.query("select user_id, status, answered from jobs"))
    await runtime.stop()
    await services.aclose()
    return {
        "t0": t0,
        "submitted": submitted - t0,
        "total": finished - t0,
        "workers": runtime.workers,
        "acks": {u: (p.first("acknowledge") or 0) - t0 for u, p in ports.items()},
        "done": {u: (p.first("images") or 0) - t0 for u, p in ports.items()},
        "images": {u: p.images_posted() for u, p in ports.items()},
        "answers": {u: p.answers() for u, p in ports.items()},
        "private": {u: [x for _, m, x in p.calls if m == "private"] for u, p in ports.items()},
        "started": [(t - t0, u) for t, u in started],
        "jobs": jobs,
        "rss_mb": _self_peak_mb(),
    }


def _self_peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def bench_load(work: Path) -> list[str]:
    """Run the child against the fleet; the summary lines."""
    with FakeOnThread(lambda: WebUIFleet(SERVERS, LATENCY)) as fleet:
        env = clean_env(
            work,
            IMAGEBOT_PROMPT_SOURCE="templates",
            STABLE_DIFFUSION_URL=fleet.urls,
            IMAGEBOT_PROVIDER_CONCURRENCY=str(SERVERS),
        )
        out_path = work / "load.json"
        with (work / "load.err").open("w") as err:
            process = subprocess.Popen(
                [sys.executable, __file__, "--child", str(out_path)],
                cwd=work,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
            _, status, usage = os.wait4(process.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError("load child failed:\n" + (work / "load.err").read_text()[-3000:])
        most_per_gpu = max(server.max_concurrent for server in fleet.servers)
        rendered = sum(server.images_rendered for server in fleet.servers)
    data = json.loads(out_path.read_text())
    return summarise(data, usage.ru_maxrss / 1024, most_per_gpu, rendered)


def summarise(data: dict[str, Any], peak_mb: float, most_per_gpu: int, rendered: int) -> list[str]:
    total = data["total"]
    images = sum(data["images"].values())
    rate = images / total
    done = [t for t in data["done"].values() if t > 0]
    spread = (min(done), statistics.median(done), _pct(done, 0.9), max(done))
    # Start order vs submission order (users were submitted as 0, 1, 2, ...).
    start_order = [int(u) for _, u in data["started"]]
    displacement = max(abs(rank - user) for rank, user in enumerate(start_order))
    tenth = USERS // 10
    by_user = [data["done"][str(n)] for n in range(USERS)]
    first_tenth = statistics.median(by_user[:tenth])
    last_tenth = statistics.median(by_user[-tenth:])
    statuses: dict[str, int] = {}
    for row in data["jobs"]:
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    lost = USERS - len([u for u, n in data["answers"].items() if n >= 1])
    lost += sum(1 for row in data["jobs"] if not row["answered"])
    twice = sum(1 for n in data["answers"].values() if n > 1)
    refused = sum(1 for texts in data["private"].values() if texts)
    naive = USERS * COUNT * LATENCY
    expected = USERS * COUNT
    return [
        line(
            f"{USERS} users x /generate {COUNT}, 500 ms/image, cap {SERVERS}",
            f"{total:.1f} s",
            f"(ideal {expected / CAP_RATE:.0f} s)",
        ),
        line(
            "  throughput vs the cap's 32 images/s",
            f"{rate:.1f} images/s ({rate / CAP_RATE:.0%})",
            ">= 90%",
            rate / CAP_RATE >= 0.9,
        ),
        line("  images posted / rendered by the fakes", f"{images} / {rendered}", f"of {expected}"),
        line("  all 200 requests accepted (acknowledged)", f"{data['submitted'] * 1000:.0f} ms"),
        line(
            "  completion per user min/median/p90/max",
            "/".join(f"{v:.1f}" for v in spread) + " s",
        ),
        line(
            "  jobs started in submission order",
            f"max displacement {displacement}",
            "(round-robin, FIFO ties)",
        ),
        line(
            "  median completion, first / last 20 submitters",
            f"{first_tenth:.1f} s / {last_tenth:.1f} s",
            "(last not starved)",
        ),
        line("  most txt2img at once on one fake GPU", f"{most_per_gpu}", "(1 = no GPU queueing)"),
        line(
            "  peak memory of the bot process (ru_maxrss)",
            f"{peak_mb:.0f} MB",
            "< 250 MB",
            peak_mb < 250,
        ),
        line(
            "  jobs lost / answered twice / refused",
            f"{lost} / {twice} / {refused}",
            "0 / 0 / 0",
            lost == 0 and twice == 0 and refused == 0,
        ),
        line("  jobs table", ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))),
        line(
            "  naive sequential (computed: 800 x 0.5 s)",
            f"{naive:.0f} s",
            f"ratio {naive / total:.1f}x",
        ),
    ]


def child_main(out_path: str) -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    result = asyncio.run(run_child(dict(os.environ)))
    Path(out_path).write_text(json.dumps(result))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child_main(sys.argv[2])
    else:
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            for text in bench_load(Path(folder)):
                print(text, flush=True)
