"""Helpers for benchmarks: fakes on a background loop, timed CLI runs with peak memory."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.fakes.threaded import FakeOnThread  # noqa: E402,F401  (re-exported for benches)

IMAGEBOT = str(Path(sys.executable).parent / "imagebot")
CLEAN_PREFIXES = ("OPENAI_", "STABILITY_", "HORDE_", "DISCORD_", "TELEGRAM_", "IMAGEBOT_")


@dataclass
class Run:
    seconds: float
    peak_mb: float
    returncode: int
    stdout: str
    stderr: str


def clean_env(workdir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(CLEAN_PREFIXES)}
    env.update({"IMAGEBOT_OUTPUT_DIR": str(workdir / "output"), **extra})
    return env


def run_cli(args: list[str], workdir: Path, env: dict[str, str]) -> Run:
    """Run `imagebot ARGS` in `workdir`; wall time and the child's peak resident memory."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [IMAGEBOT, *args],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout, stderr = process.communicate()
    seconds = time.perf_counter() - started
    # communicate() reaped the child; its rusage is in RUSAGE_CHILDREN only as a maximum over
    # all children, so measure peak memory with a dedicated wait4 run where it matters.
    return Run(seconds, 0.0, process.returncode, stdout, stderr)


def run_cli_measured(args: list[str], workdir: Path, env: dict[str, str]) -> Run:
    """Like run_cli, with the child's own peak RSS from wait4 (output goes to files)."""
    out_path, err_path = workdir / ".bench.out", workdir / ".bench.err"
    with out_path.open("w") as out, err_path.open("w") as err:
        started = time.perf_counter()
        process = subprocess.Popen([IMAGEBOT, *args], cwd=workdir, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    return Run(
        seconds,
        usage.ru_maxrss / 1024,
        process.returncode,
        out_path.read_text(),
        err_path.read_text(),
    )


def run_main_in_process(args: list[str], workdir: Path, env: dict[str, str]) -> float:
    """Time `bot.cli.main(ARGS)` in this process, imports already warm: the command's own work."""
    from imagebot.bot.cli import main

    saved_env, saved_cwd = dict(os.environ), Path.cwd()
    os.environ.clear()
    os.environ.update(env)
    os.chdir(workdir)
    try:
        started = time.perf_counter()
        status = main(args)
        seconds = time.perf_counter() - started
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    if status != 0:
        raise RuntimeError(f"imagebot {' '.join(args)} exited {status}")
    return seconds


def line(name: str, value: str, target: str = "", verdict: bool | None = None) -> str:
    mark = "" if verdict is None else ("  PASS" if verdict else "  MISS")
    return f"{name:<52} {value:<26} {target}{mark}"


Section = Callable[[Path], Iterable[str]]


def run_sections(*sections: Section) -> None:
    """Print the header, each section's lines (each in a fresh temporary folder), the run time."""
    print(f"{'measure':<52} {'figure':<26} target")
    started = time.perf_counter()
    for section in sections:
        with tempfile.TemporaryDirectory() as folder:
            for text in section(Path(folder)):
                print(text, flush=True)
    print(line("bench run time", f"{time.perf_counter() - started:.0f} s"))
