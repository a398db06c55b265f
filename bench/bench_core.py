"""Figures of the core (issue 2): prompts, a dalle batch, start-up, offline work, export.

Run: .venv/bin/python bench/bench_core.py
Every figure drives the real command line (a subprocess) against loopback fakes with set
latencies, next to the naive sequential way measured in the same run.
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import (
    FakeOnThread,
    clean_env,
    line,
    run_cli,
    run_cli_measured,
    run_main_in_process,
    run_sections,
)
from tests.fakes.openai_server import FakeOpenAI

CHAT_LATENCY = 0.3
IMAGE_LATENCY = 0.5


def bench_prompts(work: Path) -> list[str]:
    import openai  # noqa: F401  (warm, so the in-process figure is the command's own work)

    from imagebot.providers.base import PromptRequest
    from imagebot.providers.gpt import GptSource

    with FakeOnThread(lambda: FakeOpenAI(chat_latency=CHAT_LATENCY)) as fake:
        env = clean_env(work, OPENAI_BASE_URL=fake.base_url)
        warm = run_main_in_process(["prompts", "40"], work, env)
        batched_calls = len(fake.chat_requests)
        run = run_cli(["prompts", "40"], work, env)
        assert run.returncode == 0, run.stderr

        async def measure(specs_per_call: int, parallel: int) -> tuple[float, float]:
            source = GptSource(
                model="gpt-4o-mini",
                base_url=fake.base_url,
                specs_per_call=specs_per_call,
                max_parallel_calls=parallel,
            )
            started = time.perf_counter()
            await source.generate(PromptRequest(count=40))
            seconds = time.perf_counter() - started
            await source.aclose()
            return seconds, source.usage.prompt_tokens / max(1, source.usage.specs)

        _, batched_tokens = asyncio.run(measure(5, 8))
        sequential_seconds, sequential_tokens = asyncio.run(measure(1, 1))
    ratio = sequential_seconds / warm
    return [
        line("prompts 40, 300 ms per chat call", f"{warm:.2f} s", "< 1.5 s", warm < 1.5),
        line("  whole CLI process, imports included", f"{run.seconds:.2f} s"),
        line("  chat calls made", f"{batched_calls}", "(5 specs per call, 8 at once)"),
        line(
            "  naive sequential, 1 spec per call",
            f"{sequential_seconds:.2f} s",
            f"ratio {ratio:.1f}x (>= 8x)",
            ratio >= 8,
        ),
        line("  prompt tokens per spec, batched", f"{batched_tokens:.0f}"),
        line(
            "  prompt tokens per spec, one per call",
            f"{sequential_tokens:.0f}",
            f"{sequential_tokens / batched_tokens:.1f}x more",
        ),
    ]


def bench_dalle(work: Path) -> list[str]:
    with FakeOnThread(
        lambda: FakeOpenAI(chat_latency=CHAT_LATENCY, image_latency=IMAGE_LATENCY)
    ) as fake:
        env = clean_env(work, OPENAI_BASE_URL=fake.base_url, IMAGEBOT_IMAGE_MODEL="dall-e-3")
        args = ["generate", "4", "512x512", "--provider", "dalle"]
        warm = run_main_in_process(args, work, env)
        image_calls = len(fake.image_requests)
        peak = fake.max_in_flight
        run = run_cli(args, work, env)
        assert run.returncode == 0, run.stderr
    sequential = CHAT_LATENCY + 4 * IMAGE_LATENCY
    return [
        line(
            "generate 4 512x512 dall-e-3, 300 ms chat, 500 ms image",
            f"{warm:.2f} s",
            "< 1.6 s",
            warm < 1.6,
        ),
        line("  whole CLI process, imports included", f"{run.seconds:.2f} s"),
        line("  image calls / most in flight at once", f"{image_calls} / {peak}"),
        line(
            "  naive sequential (1 chat + 4 image calls)",
            f">= {sequential:.2f} s",
            f"ratio {sequential / warm:.1f}x",
        ),
    ]


def bench_import_cost() -> list[str]:
    code = "import time; t = time.perf_counter(); import openai; print(time.perf_counter() - t)"
    seconds = [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout)
        for _ in range(3)
    ]
    median = statistics.median(seconds)
    return [line("import of the openai SDK alone (median of 3)", f"{median:.2f} s")]


def bench_offline(work: Path) -> list[str]:
    env = clean_env(work)
    helps = [run_cli(["--help"], work, env).seconds for _ in range(5)]
    run = run_cli(["generate", "4", "1024x1024"], work, env)
    assert run.returncode == 0, run.stderr
    per_image = asyncio.run(_local_render_seconds())
    return [
        line(
            "imagebot --help (median of 5)",
            f"{statistics.median(helps):.3f} s",
            "< 0.3 s",
            statistics.median(helps) < 0.3,
        ),
        line(
            "offline generate 4 1024x1024 (CLI wall)",
            f"{run.seconds:.2f} s",
            "< 2 s",
            run.seconds < 2,
        ),
        line(
            "local renderer, one 1024x1024 image",
            f"{per_image:.3f} s",
            "< 0.25 s",
            per_image < 0.25,
        ),
    ]


async def _local_render_seconds() -> float:
    from imagebot.bot.settings import Settings
    from imagebot.providers.base import RenderRequest, Size
    from imagebot.providers.local.provider import LocalProvider

    provider = LocalProvider.from_options(
        Settings.from_env({}, dotenv_path=None).provider_options, None
    )
    prompts = ["a crimson sunset over mountains", "teal ocean at night", "a bowl of ramen"]
    roles = ["landscape-photographer", "animal-photographer", "food-photographer"]
    timings = []
    for number in range(9):
        request = RenderRequest(
            prompt=prompts[number % 3],
            negative_prompt="",
            size=Size(1024, 1024),
            seeds=(number,),
            role=roles[number % 3],
        )
        started = time.perf_counter()
        await provider.render(request)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def bench_export(work: Path, rows: int = 100_000) -> list[str]:
    from imagebot.storage.index import Index

    db_path = work / "output" / "archive.db"
    Index(db_path).close()
    connection = sqlite3.connect(db_path)
    tags = '["fog", "harbour", "lanterns", "dawn", "boats"]'
    connection.executemany(
        "insert into batches (id, folder, title, description, metatags, prompt, provider, model,"
        " status, created_at, platform, user_id, user_name) values"
        " (?, ?, ?, ?, ?, ?, 'local', 'offline-procedural-v1', 'complete', ?, 'discord', '7',"
        " 'ann')",
        (
            (
                f"b{n}",
                f"/archive/20261125-000000-batch-{n}",
                f"Lanterns over the harbour {n}",
                "Fishing boats rest in a fog-bound harbour while paper lanterns glow. " * 2,
                tags,
                "misty harbour at dawn, paper lanterns, fishing boats, soft light, "
                "35mm photograph, film grain",
                f"2026-11-{1 + n % 25:02d}T00:00:00Z",
            )
            for n in range(rows)
        ),
    )
    connection.commit()
    connection.close()
    run = run_cli_measured(["export", "--out", str(work / "export.csv")], work, clean_env(work))
    assert run.returncode == 0, run.stderr
    written = sum(1 for _ in (work / "export.csv").open(encoding="utf-8")) - 1
    return [
        line(
            f"export of {rows:,} archived batches", f"{run.seconds:.2f} s", "< 3 s", run.seconds < 3
        ),
        line(
            "  peak memory of the export process",
            f"{run.peak_mb:.0f} MB",
            "< 200 MB",
            run.peak_mb < 200,
        ),
        line("  rows written", f"{written:,}"),
    ]


def main() -> None:
    run_sections(
        bench_prompts,
        bench_dalle,
        bench_offline,
        bench_export,
        lambda _folder: bench_import_cost(),
    )


if __name__ == "__main__":
    main()
