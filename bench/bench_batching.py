"""Figures of batching on one GPU and of U1 (issue 12): one batched request against one per image.

Run: .venv/bin/python bench/bench_batching.py
`imagebot generate 4 512x512 --provider stable-diffusion` on ONE WebUI fake (0.5 s of GPU per
image; a batch of n costs 0.5 x (1 + 0.4 (n - 1)), one job at a time) after one 0.3 s chat
call (the OpenAI fake, the gpt prompt source). Beside it, in the same run, the original tool's
way: one request per image, one after another — the same command with the provider's batching
off (in this process, imports warm), and a plain aiohttp script doing exactly that (a child
process, like the CLI). The floor: python with the CLI's imports, and a bare aiohttp script
making the chat call and the one batched request. U1: `imagebot upscale FOLDER 1` on the same
fake (0.5 s per extra-single-image job), and the U1 button through the real bot on the Discord
fake (its defer beside /generate's, and the upscaled file), against the bare round trip.
"""

from __future__ import annotations

import contextlib
import io
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import FakeOnThread, clean_env, line, run_cli, run_main_in_process, run_sections
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.webui_server import FakeWebUI, batch_seconds

CHAT_LATENCY = 0.3
SECONDS_PER_IMAGE = 0.5
COUNT = 4
ARGS = ["generate", str(COUNT), "512x512", "--provider", "stable-diffusion"]
TARGET_RATIO = 1.5
ROUNDS = 3  # each figure is the median of this many runs, the two ways taking turns
OUR_WORK_TARGET = 0.3  # s of our own work allowed on top of the upscale's round trip

# The original tool's way, or the floor, as a bare aiohttp script: the chat call for one spec
# (with aiohttp, or with the openai SDK as the CLI makes it), then txt2img requests of
# `per_request` images each, one after another, PNGs written out.
BARE_SCRIPT = """
import asyncio, base64, json, sys, time
import aiohttp

async def chat(session, base_url, sdk):
    messages = [{"role": "user", "content": "1 spec"}]
    if sdk == "sdk":
        import openai
        client = openai.AsyncOpenAI(api_key="sk-bench", base_url=base_url)
        await client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        return
    body = {"model": "gpt-4o-mini", "messages": messages}
    async with session.post(f"{base_url}/chat/completions", json=body) as answer:
        answer.raise_for_status()
        await answer.json()

async def main(base_url, sdk, webui_url, count, per_request, folder):
    async with aiohttp.ClientSession() as session:
        await chat(session, base_url, sdk)
        made = 0
        while made < count:
            body = {"prompt": "a foggy harbour", "seed": made, "batch_size": per_request,
                    "width": 512, "height": 512, "steps": 20}
            async with session.post(webui_url, json=body) as answer:
                answer.raise_for_status()
                images = (await answer.json())["images"]
            for data in images:
                made += 1
                with open(f"{folder}/{made}.png", "wb") as out:
                    out.write(base64.b64decode(data))

base_url, sdk, webui_url, count, per_request, folder = sys.argv[1:]
asyncio.run(main(base_url, sdk, webui_url, int(count), int(per_request), folder))
"""
IMPORTS = "import imagebot.bot.cli, imagebot.providers.webui, imagebot.providers.gpt, openai"


def _bare(
    openai: FakeOpenAI, webui: FakeWebUI, work: Path, per_request: int, sdk: bool = False
) -> float:
    """Whole-process seconds of the bare script (python start-up included)."""
    folder = work / f"bare-{per_request}-{time.monotonic_ns()}"
    folder.mkdir()
    args = [openai.base_url, "sdk" if sdk else "aiohttp", f"{webui.url}/sdapi/v1/txt2img"]
    args += [str(COUNT), str(per_request), str(folder)]
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", BARE_SCRIPT, *args], capture_output=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(done.stderr.decode())
    assert len(list(folder.glob("*.png"))) == COUNT
    return seconds


def _imports() -> float:
    """Whole-process seconds of python importing what the command imports, and nothing else."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", IMPORTS], check=True, capture_output=True)
    return time.perf_counter() - started


def _own_time(args: list[str], work: Path, env: dict[str, str]) -> float:
    """run_main_in_process with the folder it prints kept out of the bench's table."""
    with contextlib.redirect_stdout(io.StringIO()):
        return run_main_in_process(args, work, env)


def _unbatched(work: Path, env: dict[str, str]) -> float:
    """The same command in this process with the WebUI provider's batching off: one request per
    image (they queue on the one GPU, so they run one after another, as the original tool's)."""
    from imagebot.providers.webui import WebUIProvider

    defaults = WebUIProvider.__init__.__kwdefaults__
    saved = defaults["batching"]
    defaults["batching"] = False
    try:
        return _own_time(ARGS, work, env)
    finally:
        defaults["batching"] = saved


def bench_batching(work: Path) -> list[str]:
    import openai  # noqa: F401  (warm, so the in-process figures are the command's own work)

    import imagebot.providers.webui  # noqa: F401

    webui_thread = FakeOnThread(lambda: FakeWebUI(latency=SECONDS_PER_IMAGE))
    openai_thread = FakeOnThread(lambda: FakeOpenAI(chat_latency=CHAT_LATENCY))
    with webui_thread as webui, openai_thread as fake_openai:
        env = clean_env(
            work,
            OPENAI_BASE_URL=fake_openai.base_url,
            IMAGEBOT_PROMPT_SOURCE="gpt",
            STABLE_DIFFUSION_URL=webui.url,
        )
        _own_time(ARGS, work, env)  # warm-up: lazy imports, the archive created
        batched, unbatched, cli, imports = [], [], [], []
        bare_seq, sdk_seq, bare_batch = [], [], []
        for _ in range(ROUNDS):
            jobs = webui.jobs
            batched.append(_own_time(ARGS, work, env))
            batched_jobs = webui.jobs - jobs
            jobs = webui.jobs
            unbatched.append(_unbatched(work, env))
            unbatched_jobs = webui.jobs - jobs
            run = run_cli(ARGS, work, env)
            assert run.returncode == 0, run.stderr
            cli.append(run.seconds)
            bare_seq.append(_bare(fake_openai, webui, work, 1))
            sdk_seq.append(_bare(fake_openai, webui, work, 1, sdk=True))
            bare_batch.append(_bare(fake_openai, webui, work, COUNT))
            imports.append(_imports())
        chat_calls = len(fake_openai.chat_requests)
    med = statistics.median
    ratio_own = med(unbatched) / med(batched)
    ratio_process = med(bare_seq) / med(cli)
    ratio_sdk = med(sdk_seq) / med(cli)
    gpu_batched = CHAT_LATENCY + batch_seconds(SECONDS_PER_IMAGE, COUNT)
    gpu_seq = CHAT_LATENCY + COUNT * SECONDS_PER_IMAGE
    return [
        line(
            f"generate {COUNT} 512x512 stable-diffusion, 1 GPU, 0.3 s chat", f"median of {ROUNDS}"
        ),
        line("  batched: the command's own time", f"{med(batched):.2f} s"),
        line("  one request per image: the same command", f"{med(unbatched):.2f} s"),
        line(
            "  speed-up, the command's own time",
            f"{ratio_own:.2f}x",
            f">= {TARGET_RATIO}x",
            ratio_own >= TARGET_RATIO,
        ),
        line("  batched: whole CLI process, imports included", f"{med(cli):.2f} s"),
        line("  one request per image: aiohttp script", f"{med(bare_seq):.2f} s"),
        line(
            "  speed-up, whole process",
            f"{ratio_process:.2f}x",
            f">= {TARGET_RATIO}x",
            ratio_process >= TARGET_RATIO,
        ),
        line("  one request per image: script, openai SDK chat", f"{med(sdk_seq):.2f} s"),
        line(
            "  speed-up, whole process, both with the SDK",
            f"{ratio_sdk:.2f}x",
            f">= {TARGET_RATIO}x",
            ratio_sdk >= TARGET_RATIO,
        ),
        line("  GPU jobs per batch: batched / one by one", f"{batched_jobs} / {unbatched_jobs}"),
        line("  model: chat + GPU, batched / one by one", f"{gpu_batched:.2f} / {gpu_seq:.2f} s"),
        line("  floor: bare aiohttp, chat + one batched call", f"{med(bare_batch):.2f} s"),
        line("  floor: python + the command's imports", f"{med(imports):.2f} s"),
        line("  chat calls made (all runs)", f"{chat_calls}"),
    ]


def bench_upscale(work: Path) -> list[str]:
    import imagebot.commands.upscaling  # noqa: F401  (warm)

    with (
        FakeOnThread(lambda: FakeWebUI(latency=SECONDS_PER_IMAGE)) as webui,
        FakeOnThread(lambda: FakeOpenAI(chat_latency=CHAT_LATENCY)) as fake_openai,
    ):
        env = clean_env(
            work,
            OPENAI_BASE_URL=fake_openai.base_url,
            IMAGEBOT_PROMPT_SOURCE="gpt",
            STABLE_DIFFUSION_URL=webui.url,
        )
        run = run_cli(["generate", "1", "512x512", "--provider", "stable-diffusion"], work, env)
        assert run.returncode == 0, run.stderr
        folder = run.stdout.strip().splitlines()[-1].strip()
        args = ["upscale", folder, "1"]
        _own_time(args, work, env)  # warm-up
        own = [_own_time(args, work, env) for _ in range(ROUNDS)]
        process = run_cli(args, work, env)
        assert process.returncode == 0, process.stderr
        trip = [_bare_upscale(webui.url, Path(folder) / "1.png") for _ in range(ROUNDS)]
    med = statistics.median
    ours = med(own) - med(trip)
    return [
        line("U1: upscale image 1 (512x512 -> 1024x1024), WebUI", f"median of {ROUNDS}"),
        line("  the command's own time", f"{med(own):.2f} s"),
        line("  bare extra-single-image round trip", f"{med(trip):.2f} s"),
        line(
            "  our own work on top of the round trip",
            f"{ours:.2f} s",
            f"<= {OUR_WORK_TARGET} s",
            ours <= OUR_WORK_TARGET,
        ),
        line("  whole CLI process, imports included", f"{process.seconds:.2f} s"),
    ]


def _bare_upscale(url: str, image: Path) -> float:
    """One extra-single-image request with aiohttp, timed in this process (session warm)."""
    import asyncio
    import base64

    import aiohttp

    body = {
        "image": base64.b64encode(image.read_bytes()).decode(),
        "upscaler_1": "R-ESRGAN 4x+",
        "upscaling_resize": 2,
    }

    async def trip() -> float:
        async with aiohttp.ClientSession() as session:
            started = time.perf_counter()
            async with session.post(f"{url}/sdapi/v1/extra-single-image", json=body) as answer:
                answer.raise_for_status()
                base64.b64decode((await answer.json())["image"])
            return time.perf_counter() - started

    return asyncio.run(trip())


def bench_u1_discord(work: Path) -> list[str]:
    """The real bot (`imagebot discord`, a child) on the Discord fake and ONE WebUI fake: a lone
    /generate 1 512x512, then U1 on its post; the defer delays of both, and the time from the
    press to the upscaled file, against the bare extra-single-image round trip."""
    import asyncio
    import os
    import signal

    from bench_discord import _delays, _on, _posted

    from common import IMAGEBOT
    from tests.fakes.discord_server import FakeDiscord

    generate_acks, u1_acks, u1_files, trips = [], [], [], []
    thread = FakeOnThread(FakeDiscord)  # bench_discord's helpers run coroutines on its loop
    with FakeOnThread(lambda: FakeWebUI(latency=SECONDS_PER_IMAGE)) as webui, thread as fake:
        env = clean_env(
            work,
            IMAGEBOT_PROMPT_SOURCE="templates",
            IMAGEBOT_PROVIDER="stable-diffusion",
            STABLE_DIFFUSION_URL=webui.url,
            DISCORD_TOKEN=fake.token,
            DISCORD_API_BASE=fake.api_base,
            DISCORD_GUILD_IDS=fake.guild.id,
        )
        with (work / "bot.err").open("w") as err:
            process = subprocess.Popen(
                [IMAGEBOT, "discord"], cwd=work, env=env, stdout=err, stderr=err
            )
            try:
                _on(thread, fake.wait_for(lambda: fake.commands_for(fake.guild.id), 30, "sync"))
                _on(thread, fake.wait_until_ready(30))
                for round_ in range(ROUNDS + 1):  # the first round warms lazy imports
                    options = {"count": 1, "size": "512x512"}
                    record = _on(thread, fake.send_slash_command("generate", options))
                    _on(thread, fake.wait_for(lambda r=record: _posted(fake, r), 60, "batch"))
                    post = next(
                        m for m in fake.messages_for_interaction(record.id) if m.attachments
                    )
                    u1 = next(i for i in post.custom_ids if i.startswith("ib:upscale:"))
                    click = _on(thread, fake.click_button(post, u1))

                    async def file_arrived(click_id: str = click.id) -> float:
                        def upscaled() -> bool:
                            return any(
                                m.attachments for m in fake.messages_for_interaction(click_id)
                            )

                        await fake.wait_for(upscaled, 60, "the upscaled file")
                        return asyncio.get_running_loop().time()

                    arrived = _on(thread, file_arrived())
                    picture = work / f"posted-{round_}.png"
                    picture.write_bytes(post.attachments[0].data)
                    if round_ == 0:
                        continue
                    generate_acks += _delays(fake, [record])
                    u1_acks += _delays(fake, [click])
                    u1_files.append(arrived - click.created_at)
                    trips.append(_bare_upscale(webui.url, picture))
            finally:
                process.send_signal(signal.SIGINT)
                os.waitpid(process.pid, 0)
    med = statistics.median
    ours = med(u1_files) - med(trips)
    return [
        line("U1 through the Discord fake (imagebot discord, WebUI)", f"median of {ROUNDS}"),
        line("  /generate 1 512x512: defer reaches the fake", f"{med(generate_acks):.0f} ms"),
        line(
            "  U1: defer reaches the fake",
            f"{med(u1_acks):.0f} ms",
            "as /generate",
            med(u1_acks) <= max(50.0, 2 * med(generate_acks)),
        ),
        line("  U1: press -> upscaled file posted", f"{med(u1_files):.2f} s"),
        line("  bare extra-single-image round trip", f"{med(trips):.2f} s"),
        line(
            "  our own work on top of the round trip",
            f"{ours:.2f} s",
            f"<= {OUR_WORK_TARGET} s",
            ours <= OUR_WORK_TARGET,
        ),
    ]


def main() -> None:
    run_sections(bench_batching, bench_upscale, bench_u1_discord)


if __name__ == "__main__":
    main()
