"""Test doubles of the chat layer: a ReplyPort that records every call, and a stub provider.

The stub renders in-process (no network boundary is crossed, so no fake server is needed); a
test registers it under a real provider id and steers it: hold renders, fail some seeds.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from imagebot.commands.ports import BatchPost
from imagebot.providers.base import (
    FreeSizes,
    ProviderError,
    RenderedImage,
    RenderRequest,
    Unavailable,
)
from tests.fakes.webui_server import make_png


@dataclass
class Call:
    """One call made on the port: its method name and arguments."""

    method: str
    text: str | None = None
    private: bool = False
    post: BatchPost | None = None
    name: str | None = None
    data: bytes | None = None


@dataclass
class RecordingPort:
    """Implements ReplyPort (plus delete_post) by remembering each call in order."""

    reply: dict[str, Any] = field(default_factory=dict)  # the address it was built from
    calls: list[Call] = field(default_factory=list)
    name: str = ""
    journal: list[tuple[str, str]] | None = None  # shared by several ports: global order

    def _add(self, call: Call) -> None:
        self.calls.append(call)
        if self.journal is not None:
            self.journal.append((self.name, call.method))

    async def acknowledge(self, *, private: bool = False) -> None:
        self._add(Call("acknowledge", private=private))

    async def progress(self, text: str, preview: bytes | None = None) -> None:
        self._add(Call("progress", text=text, data=preview))

    async def text(self, text: str, *, private: bool = False) -> None:
        self._add(Call("text", text=text, private=private))

    async def images(self, post: BatchPost) -> None:
        self._add(Call("images", post=post))

    async def file(self, name: str, data: bytes, text: str, *, private: bool = False) -> None:
        self._add(Call("file", text=text, private=private, name=name, data=data))

    async def delete_post(self) -> None:
        self._add(Call("delete_post"))

    # ------------------------------------------------------------ for assertions

    def of(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    @property
    def texts(self) -> list[str]:
        return [call.text or "" for call in self.of("text")]

    @property
    def posts(self) -> list[BatchPost]:
        return [call.post for call in self.of("images") if call.post is not None]

    @property
    def methods(self) -> list[str]:
        return [call.method for call in self.calls]


# ------------------------------------------------------------------ a steerable provider


@dataclass
class StubControls:
    """How the stub behaves; shared by every instance the registry builds in one test."""

    fail_calls: set[int] = field(default_factory=set)  # render calls to fail: 0 = the first
    fail_all: bool = False
    error: type[ProviderError] = Unavailable
    reason: str = "the server is overloaded (HTTP 503)"
    gate: asyncio.Event | None = None  # when set, renders wait for it
    renders: list[RenderRequest] = field(default_factory=list)
    started: list[str] = field(default_factory=list)  # prompts, in the order renders began
    _began: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_started(self, count: int) -> None:
        """Until `count` renders have begun (an event, never a sleep)."""
        while len(self.started) < count:
            self._began.clear()
            await self._began.wait()


class StubProvider:
    """An ImageProvider rendering solid PNGs in-process, steered by `StubProvider.controls`."""

    provider_id: ClassVar[str] = "local"
    offline: ClassVar[bool] = True
    controls: ClassVar[StubControls] = StubControls()

    @classmethod
    def from_options(cls, options: Any, session: Any) -> StubProvider:
        return cls()

    @property
    def model(self) -> str:
        return "stub-1"

    @property
    def max_images_per_call(self) -> int:
        return 1

    @property
    def max_concurrency(self) -> int:
        return 4

    def sizes(self) -> FreeSizes:
        return FreeSizes(step=8, min_side=64, max_side=2048)

    async def render(self, request: RenderRequest) -> list[RenderedImage]:
        controls = self.controls
        call = len(controls.renders)
        controls.renders.append(request)
        controls.started.append(request.prompt)
        controls._began.set()
        if controls.gate is not None:
            await controls.gate.wait()
        if controls.fail_all or call in controls.fail_calls:
            raise controls.error(self.provider_id, controls.reason)
        size = request.size
        return [
            RenderedImage(make_png(size.width, size.height, seed), seed) for seed in request.seeds
        ]

    async def aclose(self) -> None:
        """Nothing to release."""


class StubHorde(StubProvider):
    """The same stub under a second provider id, for fallback and per-provider caps."""

    provider_id: ClassVar[str] = "horde"


# ------------------------------------------------------------------ a running chat bot


@dataclass
class Harness:
    """Settings, services, runtime and chat commands wired as an adapter would wire them."""

    services: Any
    runtime: Any
    commands: Any

    async def say(
        self,
        command: str,
        args: dict[str, Any] | None = None,
        *,
        user: str = "1",
        chat: str = "100",
        platform: str = "discord",
        moderator: bool = False,
        roles: tuple[str, ...] = (),
        port: RecordingPort | None = None,
    ) -> RecordingPort:
        """One user's command, as the adapter hands it over; returns the port it answered on."""
        from imagebot.commands.invocation import Invocation
        from imagebot.commands.requester import Requester

        port = port or RecordingPort()
        invocation = Invocation(
            requester=Requester(platform, user, f"user{user}", chat, "7"),
            command=command,
            args=args or {},
            is_moderator=moderator,
            role_ids=roles,
            reply={"chat": chat, "user": user, "port": port.name},
        )
        await self.commands.handle(invocation, port)
        return port

    def jobs(self) -> list[dict[str, Any]]:
        return list(self.services.index.db.query("select * from jobs order by rowid"))

    def batches(self) -> list[dict[str, Any]]:
        return list(self.services.index.db.query("select * from batches order by rowid"))

    async def close(self) -> None:
        await self.runtime.stop()
        await self.services.aclose()


async def start_harness(
    output: Any,
    env: dict[str, str] | None = None,
    *,
    workers: int | None = None,
    factories: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Harness:
    """A started bot archiving into `output`, with the offline prompt source by default."""
    from imagebot.bot.app import build_services
    from imagebot.bot.runtime import Runtime
    from imagebot.bot.settings import Settings
    from imagebot.commands.chat import ChatCommands

    # HORDE_API_KEY makes `horde` configured; the stub stands in for it (no network).
    environ = {
        "IMAGEBOT_OUTPUT_DIR": str(output),
        "IMAGEBOT_PROMPT_SOURCE": "templates",
        "HORDE_API_KEY": "0000000000",
    }
    settings = Settings.from_env(environ={**environ, **(env or {})}, dotenv_path=None)
    services = build_services(settings)
    runtime = Runtime(services, workers=workers, **kwargs)
    commands = ChatCommands(services, runtime)
    runtime.set_worker(commands.run)
    for platform, factory in (factories or {}).items():
        runtime.register_platform(platform, factory)
    await runtime.start()
    return Harness(services, runtime, commands)


def install_stub(monkeypatch: Any) -> StubControls:
    """Serve the `local` and `horde` ids with the stub for one test; returns its controls."""
    from imagebot.providers.catalog import PROVIDERS

    controls = StubControls()
    monkeypatch.setattr(StubProvider, "controls", controls)
    for provider_id, stub in (("local", "StubProvider"), ("horde", "StubHorde")):
        stubbed = replace(PROVIDERS[provider_id], module="tests.recording_port", class_name=stub)
        monkeypatch.setitem(PROVIDERS, provider_id, stubbed)
    return controls


async def until(condition: Any, timeout: float = 10.0) -> None:
    """Wait for `condition()` to hold (a guard against hanging, not a timing assertion)."""

    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout)
