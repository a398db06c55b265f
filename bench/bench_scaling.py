"""What the pieces of a many-process deployment cost (docs/scaling.md): S3 requests and time
per batch against moto's S3 server (requests counted by a WSGI wrapper around it), the web
app's S3 requests on a front with no local copy, and the resident memory of a sharded
`imagebot discord` process against the Discord fake.

    .venv/bin/python bench/bench_scaling.py
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    IMAGEBOT,
    FakeOnThread,
    clean_env,
    line,
    run_cli_measured,
    run_sections,
)

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
               "AWS_REGION": "us-east-1"}  # fmt: skip
BATCHES = 5


class CountingS3:
    """moto's S3 app on 127.0.0.1 with every request counted by method."""

    def __init__(self) -> None:
        from moto.server import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import WSGIRequestHandler, make_server

        class Quiet(WSGIRequestHandler):
            def log_request(self, *args: Any) -> None:
                """No access log on the bench's output."""

        self.counts: Counter[str] = Counter()
        app = DomainDispatcherApplication(create_backend_app)

        def counted(environ: dict[str, Any], start_response: Any) -> Any:
            self.counts[environ["REQUEST_METHOD"]] += 1
            return app(environ, start_response)

        self._server = make_server("127.0.0.1", 0, counted, threaded=True, request_handler=Quiet)
        self.endpoint = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def create_bucket(self, name: str) -> None:
        request = urllib.request.Request(f"{self.endpoint}/{name}", method="PUT")
        urllib.request.urlopen(request).read()
        self.counts.clear()

    def taken(self) -> Counter[str]:
        counts, self.counts = self.counts, Counter()
        return counts

    def stop(self) -> None:
        self._server.shutdown()


def per_batch(counts: Counter[str], batches: int) -> str:
    return ", ".join(f"{n / batches:g} {method}" for method, n in sorted(counts.items()))


def bench_archive(work: Path) -> list[str]:
    """`imagebot generate 4 512x512 --batches 5`, local folders vs the S3 archive."""
    s3 = CountingS3()
    try:
        s3.create_bucket("bench")
        args = ["generate", "4", "512x512", "--batches", str(BATCHES)]
        (work / "local").mkdir()
        local = run_cli_measured(args, work / "local", clean_env(work / "local"))
        remote_env = clean_env(work / "s3", IMAGEBOT_ARCHIVE_URL="s3://bench/archive",
                               IMAGEBOT_S3_ENDPOINT=s3.endpoint, **CREDENTIALS)  # fmt: skip
        (work / "s3").mkdir()
        remote = run_cli_measured(args, work / "s3", remote_env)
        assert remote.returncode == 0, remote.stderr
        uploads = s3.taken()
        folders = remote.stdout.split()
        upload_ms = time_uploads(work / "s3", s3)
        lines = [
            line(f"generate 4 512x512 x{BATCHES}, local archive", f"{local.seconds:.2f} s"),
            line(f"generate 4 512x512 x{BATCHES}, S3 archive (moto)", f"{remote.seconds:.2f} s"),
            line("  S3 requests per 4-image batch", per_batch(uploads, BATCHES)),
            line("  upload of one 4-image batch, p50 of 20", f"{upload_ms:.0f} ms"),
            line(
                "  peak memory of the CLI, local / S3",
                f"{local.peak_mb:.0f} / {remote.peak_mb:.0f} MB",
            ),  # fmt: skip
        ]
        lines += bench_web_reads(work / "s3", remote_env, s3, folders)
        return lines
    finally:
        s3.stop()


def time_uploads(work: Path, s3: CountingS3) -> float:
    """ObjectStore.upload_folder of one real 4-image batch's files, 20 times (p50, ms)."""
    import shutil
    import statistics

    from imagebot.storage.object_store import ObjectStore

    source = next(p for p in (work / "output" / ".s3cache").iterdir() if p.is_dir())
    staging = work / "upload-bench"
    shutil.copytree(source, staging)
    os.environ.update(CREDENTIALS)
    store = ObjectStore("s3://bench/timing", s3.endpoint)

    async def uploads() -> list[float]:
        times = []
        for number in range(20):
            started = time.perf_counter()
            await store.upload_folder(staging, f"batch-{number}")
            times.append((time.perf_counter() - started) * 1000)
        return times

    result = statistics.median(asyncio.run(uploads()))
    s3.taken()
    return result


def bench_web_reads(work: Path, env: dict[str, str], s3: CountingS3, folders: list) -> list:
    """A front with no local copy of the batches: S3 requests per page, file and thumbnail."""
    import shutil

    from aiohttp.test_utils import TestClient, TestServer

    shutil.rmtree(work / "output" / ".s3cache", ignore_errors=True)

    async def visit() -> dict[str, Counter[str]]:
        from imagebot.bot.app import build_context, build_web
        from imagebot.bot.settings import Settings

        saved = dict(os.environ)
        os.environ.update(env)
        try:
            ctx = build_context(Settings.from_env(env, dotenv_path=None))
        finally:
            os.environ.clear()
            os.environ.update(saved)
        adapter = build_web(ctx)
        client = TestClient(TestServer(adapter.app, host="127.0.0.1"))
        await client.start_server()
        ids = [row["id"] for row in ctx.services.index.db.query("select id from batches")]
        seen: dict[str, Counter[str]] = {}
        s3.taken()
        try:
            for what, path in (("batch page", "/batch/{}"), ("image", "/batch/{}/files/1.png"),
                               ("thumbnail, first view", "/thumb/{}/1"),
                               ("thumbnail, again", "/thumb/{}/1")):  # fmt: skip
                for batch_id in ids:
                    response = await client.get(path.format(batch_id))
                    assert response.status == 200, (path, response.status)
                    await response.read()
                seen[what] = s3.taken()
        finally:
            adapter.site.closing.set()
            await client.close()
            await adapter.stop()
            await ctx.services.aclose()
        return seen

    seen = asyncio.run(visit())
    return [line(f"  S3 requests per {what} (cold front)", per_batch(counts, BATCHES) or "0")
            for what, counts in seen.items()]  # fmt: skip


def bench_shard_process(work: Path) -> list[str]:
    """Resident memory of `imagebot discord` running shard 0 of 2, idle and after 10 batches."""
    from tests.fakes.discord_server import FakeDiscord

    thread = FakeOnThread(lambda: FakeDiscord(guild_count=2, shard_count=2))
    with thread as fake:
        env = clean_env(work, IMAGEBOT_PROMPT_SOURCE="templates", DISCORD_TOKEN=fake.token,
                        DISCORD_API_BASE=fake.api_base, DISCORD_GUILD_IDS=fake.guilds[0].id,
                        DISCORD_SHARDS="0-0/2")  # fmt: skip

        def on(coro: Any, timeout: float = 60) -> Any:
            return asyncio.run_coroutine_threadsafe(coro, thread._loop).result(timeout)

        with (work / "bot.err").open("w") as err:
            process = subprocess.Popen([IMAGEBOT, "discord"], cwd=work, env=env, stderr=err)
            try:
                on(fake.wait_until_ready(60))
                idle = rss_mb(process.pid)
                started = time.perf_counter()
                for _ in range(10):
                    record = on(
                        fake.send_slash_command("generate", {"count": 4, "size": "512x512"})
                    )
                    on(
                        fake.wait_for(
                            lambda r=record: any(
                                m.attachments for m in fake.messages_for_interaction(r.id)
                            ),
                            60,
                        )
                    )
                busy = rss_mb(process.pid)
                seconds = time.perf_counter() - started
            finally:
                process.send_signal(signal.SIGINT)
                _, _, usage = os.wait4(process.pid, 0)
    return [
        line("imagebot discord, shard 0-0/2: RSS when ready", f"{idle:.0f} MB"),
        line("  RSS after 10 x /generate 4 512x512", f"{busy:.0f} MB ({seconds:.1f} s)"),
        line("  peak RSS (ru_maxrss)", f"{usage.ru_maxrss / 1024:.0f} MB"),
    ]


def rss_mb(pid: int) -> float:
    for text in Path(f"/proc/{pid}/status").read_text().splitlines():
        if text.startswith("VmRSS:"):
            return int(text.split()[1]) / 1024
    return 0.0


if __name__ == "__main__":
    run_sections(bench_archive, bench_shard_process)
