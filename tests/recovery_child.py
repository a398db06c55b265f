"""A bot process for the kill -9 test: `submit` queues one request and waits to be killed;
`resume` starts again, answers what was left, and exits.

Settings come from the environment the parent test sets (IMAGEBOT_OUTPUT_DIR,
STABLE_DIFFUSION_URL of its fake WebUI); every answer is one JSON line in RECOVERY_ANSWERS.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from imagebot.bot.app import build_context  # noqa: E402
from imagebot.bot.settings import Settings  # noqa: E402
from imagebot.commands.invocation import Invocation  # noqa: E402
from imagebot.commands.ports import BatchPost  # noqa: E402
from imagebot.commands.requester import Requester  # noqa: E402

PLATFORM = "test"


class FilePort:
    """A ReplyPort writing each answer as a JSON line (progress is not an answer: skipped)."""

    def __init__(self, reply: dict, path: Path):
        self.reply = reply
        self.path = path

    def _write(self, record: dict) -> None:
        with self.path.open("a", encoding="utf-8") as stream:
            stream.write(json.dumps({**record, "pid": os.getpid()}) + "\n")
            stream.flush()
            os.fsync(stream.fileno())

    async def acknowledge(self) -> None:
        """Nothing to write: acknowledging is not answering."""

    async def progress(self, text: str) -> None:
        """Nothing to write."""

    async def text(self, text: str, *, private: bool = False) -> None:
        self._write({"method": "text", "text": text})

    async def images(self, post: BatchPost) -> None:
        images = [str(path) for path in post.images]
        self._write({"method": "images", "batch_id": post.batch_id, "images": images})

    async def file(self, name: str, data: bytes, text: str, *, private: bool = False) -> None:
        self._write({"method": "file", "name": name})

    async def delete_post(self) -> None:
        self._write({"method": "delete_post"})


async def main(mode: str) -> int:
    answers = Path(os.environ["RECOVERY_ANSWERS"])
    settings = Settings.from_env(dotenv_path=None)
    ctx = build_context(settings)
    services, runtime, commands = ctx.services, ctx.runtime, ctx.chat
    runtime.register_platform(PLATFORM, lambda reply: FilePort(reply, answers))
    await runtime.start()
    if mode == "submit":
        reply = {"chat": "100", "user": "1"}
        invocation = Invocation(
            requester=Requester(PLATFORM, "1", "ann", "100"),
            command="generate",
            args={"count": 2, "size": "64x64", "provider": "stable-diffusion", "theme": "owls"},
            reply=reply,
        )
        await commands.handle(invocation, FilePort(reply, answers))
        await asyncio.Event().wait()  # until the parent kills this process
    await runtime.drain()
    await runtime.stop()
    await services.aclose()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1])))
