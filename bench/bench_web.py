"""The web app on a large archive: `imagebot web` in its own process over an index of N batches
(made directly through storage/, the fast way), p95 server time (Server-Timing) of 50 requests
each for the gallery's first page, searches and batch pages, and the process's memory.

    .venv/bin/python bench/bench_web.py [--sizes 1000,100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import IMAGEBOT, clean_env  # noqa: E402

WORDS = ("foggy harbour lighthouse fox snow ramen castle forest dragon neon city desert "
         "river portrait market garden mountain storm ship robot cat owl temple bridge "
         "lantern meadow glacier canyon village train").split()  # fmt: skip
ROLES = ("painter", "landscape-photographer", "food-photographer", "fantasy-artist")
PLATFORMS = ("discord", "telegram", "web", "cli")
REAL_FOLDERS = 200  # batches with files on disk; the other rows share their folders
REQUESTS = 50


def make_archive(output: Path, count: int) -> list[str]:
    """`count` batches in the index (and REAL_FOLDERS real folders); returns every id."""
    from PIL import Image

    from imagebot.storage.archive import Archive
    from imagebot.storage.index import Index, iso
    from imagebot.storage.transactions import writing

    rng = random.Random(7)
    archive = Archive(output)
    output.mkdir(parents=True, exist_ok=True)
    picture = output / "sample.png"
    # Noise: the hardest picture to fit in 40 KB, not a flat colour that compresses to nothing.
    Image.effect_noise((512, 512), 80).convert("RGB").save(picture)
    folders = []
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for n in range(REAL_FOLDERS):
        staging = archive.stage(f"real{n}")
        image = archive.write_image(staging, 1, picture.read_bytes(), extension="png",
                                    width=512, height=512, seed=n)  # fmt: skip
        info = {"id": f"real{n}", "title": f"Sample {n}", "images": [image.info()],
                "settings": {"steps": 20}, "provider": "local"}  # fmt: skip
        folders.append(str(archive.publish(staging, info, start + timedelta(seconds=n))))
    index = Index(output / "archive.db")
    ids, rows = [], []
    for n in range(count):
        words = rng.sample(WORDS, 4)
        batch_id = f"{n:012x}"
        ids.append(batch_id)
        rows.append((
            batch_id, folders[n % REAL_FOLDERS], " ".join(words[:3]).capitalize(),
            f"A picture of {' and '.join(words)}.", json.dumps(words), ", ".join(words),
            "blurry", "templates", "local", "procedural", "512x512", "512x512",
            rng.choice(ROLES), None, "complete", 1, iso(start + timedelta(minutes=n)),
            rng.choice(PLATFORMS), str(n % 500), f"user{n % 500}", str(n % 50),
        ))  # fmt: skip
    with writing(index.db):
        index.db.conn.executemany(
            "insert into batches (id, folder, title, description, metatags, prompt, "
            "negative_prompt, prompt_source, provider, model, size, rendered_size, role, "
            "theme, status, image_count, created_at, platform, user_id, user_name, chat_id) "
            "values (" + ", ".join("?" * 21) + ")",
            rows,
        )
    index.close()
    return ids


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def memory_mb(pid: int) -> tuple[float, float]:
    """Resident and peak resident memory of `pid`, in MB."""
    fields = {}
    for text in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = text.partition(":")
        fields[name] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


async def server_times(base: str, paths: list[str]) -> list[float]:
    """Server time (ms) of each request, from the app's Server-Timing header."""
    import aiohttp

    times = []
    async with aiohttp.ClientSession() as session:
        for path in paths:
            async with session.get(base + path) as response:
                await response.read()
                assert response.status == 200, (path, response.status)
                times.append(float(response.headers["Server-Timing"].split("dur=")[1]))
    return times


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


async def measure(base: str, ids: list[str], rng: random.Random) -> dict[str, float]:
    await server_times(base, ["/", "/?q=harbour", f"/batch/{ids[0]}"])  # warm up
    figures = {}
    cases = {
        "gallery first page": ["/"] * REQUESTS,
        "gallery page 50": ["/?page=50"] * REQUESTS,
        "search (one word)": [f"/?q={rng.choice(WORDS)}" for _ in range(REQUESTS)],
        "search (two words)": [
            f"/?q={rng.choice(WORDS)}+{rng.choice(WORDS)}" for _ in range(REQUESTS)
        ],  # fmt: skip
        "filter (role + platform)": [f"/?role={rng.choice(ROLES)}&platform=web"] * REQUESTS,
        "batch page": [f"/batch/{rng.choice(ids)}" for _ in range(REQUESTS)],
        "thumbnail (cached)": ["/thumb/000000000000/1"] * REQUESTS,
    }
    for name, paths in cases.items():
        figures[name] = p95(await server_times(base, paths))
    return figures


def bench(count: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        began = time.perf_counter()
        ids = make_archive(workdir / "output", count)
        made = time.perf_counter() - began
        port = free_port()
        env = clean_env(workdir, IMAGEBOT_WEB_PORT=str(port))
        server = subprocess.Popen([IMAGEBOT, "web"], cwd=workdir, env=env,
                                  stderr=subprocess.PIPE, text=True)  # fmt: skip
        try:
            for line in server.stderr:  # type: ignore[union-attr]
                if "web app on" in line:
                    break
            base = f"http://127.0.0.1:{port}"
            asyncio.run(server_times(base, ["/thumb/000000000000/1"]))  # made once, here
            thumb = next((workdir / "output" / ".thumbs").rglob("*.webp"))
            made_at = thumb.stat().st_mtime_ns
            figures = asyncio.run(measure(base, ids, random.Random(1)))
            rss, peak = memory_mb(server.pid)
            return {"batches": count, "archive_s": made, "p95_ms": figures, "rss_mb": rss,
                    "peak_mb": peak, "thumb_bytes": thumb.stat().st_size,
                    "thumb_remade": thumb.stat().st_mtime_ns != made_at}  # fmt: skip
        finally:
            server.terminate()
            server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,100000")
    args = parser.parse_args()
    results = [bench(int(size)) for size in args.sizes.split(",")]
    names = list(results[0]["p95_ms"])  # type: ignore[arg-type]
    print("| p95 server time (ms), 50 requests | " + " | ".join(
        f"{r['batches']:,} batches" for r in results) + " |")  # fmt: skip
    print("|---|" + "---:|" * len(results))
    for name in names:
        print(f"| {name} | " + " | ".join(f"{r['p95_ms'][name]:.1f}" for r in results) + " |")
    print("| RSS of `imagebot web` after the run (MB) | " + " | ".join(
        f"{r['rss_mb']:.0f} (peak {r['peak_mb']:.0f})" for r in results) + " |")  # fmt: skip
    print("| thumbnail size (bytes); remade after first | " + " | ".join(
        f"{r['thumb_bytes']:,}; {'yes' if r['thumb_remade'] else 'no'}" for r in results)
        + " |")  # fmt: skip
    print("| building the archive (s) | " + " | ".join(
        f"{r['archive_s']:.1f}" for r in results) + " |")  # fmt: skip
    print(f"\n{os.cpu_count()} CPUs; {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
