"""ComfyUI: fill an API-format workflow, queue it (POST /prompt), follow /ws, fetch /view.

One queued prompt per seed, so every image has its own seed; the prompts of a call spread
over the server pool (COMFYUI_URL may list several servers). The workflow is a JSON file with
`{{name}}` placeholders (data/comfyui/README.md); the default one is text-to-image.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import aiohttp

from imagebot.providers.base import (
    BadResponse,
    ConfigError,
    FreeSizes,
    ProgressCallback,
    ProviderError,
    RenderedImage,
    RenderRequest,
    SizeRule,
    Unavailable,
    notify,
)
from imagebot.providers.content import DATA_DIR
from imagebot.providers.http_errors import (
    error_for_exception,
    error_for_status,
    request_bytes,
    request_json,
    with_retries,
)
from imagebot.providers.server_pool import ServerPool

DEFAULT_WORKFLOW = DATA_DIR / "comfyui" / "default_workflow.json"
PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
PLACEHOLDERS = frozenset(
    {"prompt", "negative_prompt", "width", "height", "seed", "steps", "cfg", "sampler",
     "scheduler", "checkpoint"}
)  # fmt: skip

if TYPE_CHECKING:
    from imagebot.providers.catalog import ProviderOptions
REQUIRED_PLACEHOLDERS = ("prompt", "seed")  # without a seed every run would be the cached first
# Role packs name samplers the A1111 way ("DPM++ 2M Karras"); ComfyUI splits sampler/scheduler.
A1111_SAMPLERS = {
    "euler a": "euler_ancestral", "euler": "euler", "lms": "lms", "heun": "heun",
    "dpm2": "dpm_2", "dpm2 a": "dpm_2_ancestral", "dpm++ 2s a": "dpmpp_2s_ancestral",
    "dpm++ 2m": "dpmpp_2m", "dpm++ sde": "dpmpp_sde", "dpm++ 2m sde": "dpmpp_2m_sde",
    "dpm++ 3m sde": "dpmpp_3m_sde", "dpm fast": "dpm_fast", "dpm adaptive": "dpm_adaptive",
    "ddim": "ddim", "unipc": "uni_pc", "lcm": "lcm", "plms": "euler",
}  # fmt: skip
SCHEDULER_SUFFIXES = ("karras", "exponential", "sgm uniform", "simple")


def comfy_sampler(name: str) -> tuple[str, str]:
    """(sampler_name, scheduler) for an A1111-style or native ComfyUI sampler name."""
    text = name.strip()
    lowered = text.lower()
    scheduler = "normal"
    for suffix in SCHEDULER_SUFFIXES:
        if lowered.endswith(" " + suffix):
            scheduler = suffix.replace(" ", "_")
            lowered = lowered[: -len(suffix) - 1].strip()
            break
    return A1111_SAMPLERS.get(lowered, text if scheduler == "normal" else lowered), scheduler


def placeholders_in(template: Any) -> set[str]:
    """Every `{{name}}` used anywhere in a workflow."""
    if isinstance(template, dict):
        return set().union(*(placeholders_in(v) for v in template.values()))
    if isinstance(template, list):
        return set().union(*(placeholders_in(v) for v in template))
    if isinstance(template, str):
        return set(PLACEHOLDER.findall(template))
    return set()


def fill_workflow(template: Any, values: Mapping[str, Any]) -> Any:
    """`template` with placeholders filled; a value that is one placeholder keeps its type."""
    if isinstance(template, dict):
        return {key: fill_workflow(value, values) for key, value in template.items()}
    if isinstance(template, list):
        return [fill_workflow(value, values) for value in template]
    if isinstance(template, str):
        whole = PLACEHOLDER.fullmatch(template.strip())
        if whole:
            return values[whole.group(1)]  # "{{seed}}" -> 42, a number as ComfyUI's INT wants
        return PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), template)
    return template


def load_workflow(path: Path, setting: str = "COMFYUI_WORKFLOW") -> dict[str, Any]:
    """Read and check an API-format workflow; ConfigError names the setting and the problem."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{setting}: cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ConfigError(f"{setting}: {path} is not valid JSON: {exc}") from None
    if isinstance(data, dict) and "nodes" in data and "links" in data:
        raise ConfigError(
            f"{setting}: {path} is a ComfyUI UI workflow; save it with 'Export (API)' instead"
        )
    if not (
        isinstance(data, dict)
        and data
        and all(isinstance(node, dict) and "class_type" in node for node in data.values())
    ):
        raise ConfigError(
            f"{setting}: {path} is not an API-format workflow "
            "(a JSON object of nodes, each with class_type and inputs)"
        )
    used = placeholders_in(data)
    if unknown := sorted(used - PLACEHOLDERS):
        raise ConfigError(
            f"{setting}: {path} uses unknown placeholder(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(PLACEHOLDERS))}"
        )
    if missing := [name for name in REQUIRED_PLACEHOLDERS if name not in used]:
        raise ConfigError(
            f"{setting}: {path} must contain "
            + " and ".join("{{" + name + "}}" for name in missing)
        )
    return data


def rejection_message(body: str) -> str:
    """The user's line for a 400 from /prompt: {"error": {...}, "node_errors": {...}}."""
    try:
        data = json.loads(body)
    except ValueError:
        return f"the server rejected the workflow: {body.strip()[:300] or 'no details'}"
    error = data.get("error") if isinstance(data, dict) else None
    nodes = data.get("node_errors") if isinstance(data, dict) else None
    head = error.get("message") if isinstance(error, dict) else error
    problems = []
    for node_id, info in (nodes or {}).items() if isinstance(nodes, dict) else ():
        for problem in (info or {}).get("errors") or []:
            details = str(problem.get("details") or "")[:200]
            problems.append(
                f"{info.get('class_type', 'node')} (node {node_id}): "
                f"{problem.get('message', 'invalid')}" + (f": {details}" if details else "")
            )
    if not problems and isinstance(error, dict) and error.get("details"):
        problems.append(str(error["details"])[:300])
    text = f"the server rejected the workflow ({head or 'invalid prompt'})"
    if problems:
        text += ": " + "; ".join(problems)
    if "ckpt_name" in text:
        text += " (install that checkpoint on the server or set COMFYUI_CHECKPOINT to one it has)"
    return text


def execution_error_message(data: Mapping[str, Any]) -> str:
    """The user's line for an `execution_error` websocket message or history entry."""
    where = f"{data.get('node_type') or 'a node'} (node {data.get('node_id', '?')})"
    text = str(data.get("exception_message") or data.get("exception_type") or "unknown error")
    return f"the workflow failed in {where}: {text.strip()[:300]}"


class ComfyUIProvider:
    """Renders with a ComfyUI server (or a pool of them) through its HTTP and websocket API."""

    provider_id: ClassVar[str] = "comfyui"
    offline: ClassVar[bool] = False

    def __init__(
        self,
        session: aiohttp.ClientSession,
        urls: Sequence[str],
        *,
        workflow_path: str | Path | None = None,
        checkpoint: str | None = None,
        timeout: float = 600.0,
        poll_interval: float = 1.0,
        use_websocket: bool = True,
        images_per_call: int = 4,
    ):
        if not urls:
            raise ConfigError("COMFYUI_URL is not set: give the ComfyUI server root(s)")
        self._session = session
        self._pool = ServerPool([url.rstrip("/") for url in urls])
        path = Path(workflow_path) if workflow_path else DEFAULT_WORKFLOW
        self._workflow = load_workflow(path, "COMFYUI_WORKFLOW" if workflow_path else "COMFYUI")
        self._workflow_name = path.name if workflow_path else None
        self._checkpoint = checkpoint
        self._found: dict[str, str] = {}  # server -> the checkpoint it offered first
        self._timeout = timeout
        self._poll_interval = poll_interval
        self._use_websocket = use_websocket
        self._images_per_call = images_per_call
        # With a pool, fail over at once rather than retry a dead server.
        self._attempts = 1 if len(self._pool) > 1 else 2

    @classmethod
    def from_options(
        cls, options: ProviderOptions, session: aiohttp.ClientSession
    ) -> ComfyUIProvider:
        """COMFYUI_URL, and COMFYUI_WORKFLOW / COMFYUI_CHECKPOINT if set."""
        return cls(
            session,
            options.comfyui_urls,
            workflow_path=options.comfyui_workflow,
            checkpoint=options.comfyui_checkpoint,
        )

    @property
    def model(self) -> str:
        if self._checkpoint:
            return self._checkpoint
        if "checkpoint" not in placeholders_in(self._workflow) and self._workflow_name:
            return f"workflow {self._workflow_name}"
        return next(iter(self._found.values()), "server's first checkpoint")

    @property
    def max_images_per_call(self) -> int:
        return self._images_per_call

    @property
    def max_concurrency(self) -> int:
        return len(self._pool)

    def sizes(self) -> SizeRule:
        return FreeSizes(step=8, min_side=64, max_side=2048, max_pixels=2048 * 2048)

    async def aclose(self) -> None:
        """Nothing to release: the HTTP session belongs to the caller."""

    async def render(
        self, request: RenderRequest, progress: ProgressCallback | None = None
    ) -> list[RenderedImage]:
        """One queued prompt per seed; the images come back in the order of `request.seeds`."""
        jobs = [
            self._pool.run(lambda url, seed=seed: self._render_seed(url, request, seed, progress))
            for seed in request.seeds
        ]
        results = await asyncio.gather(*jobs, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise error_for_exception(self.provider_id, result)
        return list(results)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ one image

    async def _render_seed(
        self, url: str, request: RenderRequest, seed: int, progress: ProgressCallback | None
    ) -> RenderedImage:
        workflow = fill_workflow(self._workflow, await self._values(url, request, seed))
        client_id = uuid.uuid4().hex
        # Connect before queueing, as ComfyUI's own example does, so no message is missed.
        ws = await self._connect(url, client_id) if self._use_websocket else None
        prompt_id: str | None = None
        seen = {"running": False}
        try:
            async with asyncio.timeout(self._timeout):
                prompt_id = await self._queue(url, workflow, client_id)
                if ws is not None:
                    await self._follow(ws, prompt_id, seed, progress, seen)
                entry = await self._history(url, prompt_id)
                return await self._fetch_image(url, entry, seed)
        except TimeoutError:
            await self._forget(url, prompt_id, seen["running"])
            raise Unavailable(
                self.provider_id, f"the server did not finish within {self._timeout:.0f} s"
            ) from None
        except asyncio.CancelledError:
            await self._forget(url, prompt_id, seen["running"])
            raise
        finally:
            if ws is not None:
                await ws.close()

    async def _values(self, url: str, request: RenderRequest, seed: int) -> dict[str, Any]:
        settings = request.settings
        sampler, scheduler = comfy_sampler(str(settings.get("sampler") or "euler"))
        values: dict[str, Any] = {
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt,
            "width": request.size.width,
            "height": request.size.height,
            "seed": seed,
            "steps": int(settings.get("steps", 20)),
            "cfg": float(settings.get("cfg_scale", settings.get("cfg", 7.0))),
            "sampler": str(settings.get("sampler_name") or sampler),
            "scheduler": str(settings.get("scheduler") or scheduler),
            "checkpoint": "",
        }
        if "checkpoint" in placeholders_in(self._workflow):
            wanted = request.model if request.model and request.model != self.model else None
            values["checkpoint"] = wanted or self._checkpoint or await self._first_checkpoint(url)
        return values

    async def _first_checkpoint(self, url: str) -> str:
        """The first checkpoint the server lists, when COMFYUI_CHECKPOINT names none."""
        if url not in self._found:
            info = await request_json(
                self._session, "GET", f"{url}/object_info/CheckpointLoaderSimple",
                provider=self.provider_id, timeout=30, attempts=self._attempts,
            )  # fmt: skip
            try:
                spec = info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"]
                # Older servers: [[names], {...}]; newer: ["COMBO", {"options": [names]}].
                names = spec[0] if isinstance(spec[0], list) else spec[1]["options"]
            except (KeyError, IndexError, TypeError):
                names = []
            if not names:
                raise ProviderError(
                    self.provider_id,
                    f"the server at {url} has no checkpoint in models/checkpoints; "
                    "install one or set COMFYUI_CHECKPOINT",
                )
            self._found[url] = str(names[0])
        return self._found[url]

    async def _connect(self, url: str, client_id: str) -> aiohttp.ClientWebSocketResponse | None:
        ws_url = re.sub(r"^http", "ws", url) + f"/ws?clientId={client_id}"
        try:
            async with asyncio.timeout(10):
                return await self._session.ws_connect(
                    ws_url, heartbeat=30, timeout=aiohttp.ClientWSTimeout(ws_close=5)
                )
        except aiohttp.ClientConnectorError as exc:
            raise error_for_exception(self.provider_id, exc) from exc  # down: let the pool move on
        except (aiohttp.ClientError, TimeoutError):
            return None  # a proxy without websockets: poll /history instead

    async def _queue(self, url: str, workflow: dict[str, Any], client_id: str) -> str:
        async def once() -> str:
            try:
                async with self._session.post(
                    f"{url}/prompt",
                    json={"prompt": workflow, "client_id": client_id},
                    timeout=aiohttp.ClientTimeout(total=60),
                ) as response:
                    body = await response.text()
                    if response.status == 400:
                        raise ProviderError(self.provider_id, rejection_message(body))
                    if response.status >= 400:
                        raise error_for_status(
                            self.provider_id, response.status, body, response.headers
                        )
                    data = json.loads(body)
            except ProviderError:
                raise
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                raise error_for_exception(self.provider_id, exc) from exc
            if not isinstance(data, dict) or not data.get("prompt_id"):
                raise BadResponse(self.provider_id, "POST /prompt answered without a prompt_id")
            return str(data["prompt_id"])

        return await with_retries(once, attempts=self._attempts)

    async def _follow(
        self,
        ws: aiohttp.ClientWebSocketResponse,
        prompt_id: str,
        seed: int,
        progress: ProgressCallback | None,
        seen: dict[str, bool],
    ) -> None:
        """Read websocket events until our prompt ends; a dropped socket falls back to polling."""
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue  # binary frames are live previews
            try:
                event = json.loads(message.data)
                kind, data = event["type"], event.get("data") or {}
            except (ValueError, KeyError, TypeError):
                continue
            if data.get("prompt_id", prompt_id) != prompt_id:
                continue  # another prompt's events (a shared client id or a broadcast)
            if kind == "status" and not seen["running"]:
                remaining = (data.get("status") or {}).get("exec_info", {}).get("queue_remaining")
                if remaining:
                    await notify(progress, f"ComfyUI: queued ({remaining} in the server's queue)")
            elif kind == "execution_start" or (kind == "executing" and data.get("node")):
                seen["running"] = True
            elif kind == "progress":
                await notify(
                    progress, f"ComfyUI: seed {seed}, step {data.get('value')}/{data.get('max')}"
                )
            elif kind == "execution_error":
                raise ProviderError(self.provider_id, execution_error_message(data))
            elif kind == "execution_interrupted":
                raise Unavailable(self.provider_id, "the render was interrupted on the server")
            elif kind == "execution_success" or (kind == "executing" and data.get("node") is None):
                return

    async def _history(self, url: str, prompt_id: str) -> dict[str, Any]:
        """Poll GET /history/{id} until the prompt is there (it appears once it has run)."""
        while True:
            data = await request_json(
                self._session, "GET", f"{url}/history/{prompt_id}",
                provider=self.provider_id, timeout=30, attempts=self._attempts,
            )  # fmt: skip
            entry = data.get(prompt_id) if isinstance(data, dict) else None
            if isinstance(entry, dict):
                status = entry.get("status") or {}
                if status.get("status_str") == "error":
                    for name, details in status.get("messages") or []:
                        if name == "execution_error":
                            raise ProviderError(self.provider_id, execution_error_message(details))
                    raise ProviderError(self.provider_id, "the workflow failed on the server")
                if status.get("completed", True):
                    return entry
            await asyncio.sleep(self._poll_interval)

    async def _fetch_image(self, url: str, entry: dict[str, Any], seed: int) -> RenderedImage:
        """Download the first saved image (SaveImage's `output`, else a preview's `temp`)."""
        outputs = entry.get("outputs") or {}
        order = {node_id: index for index, node_id in enumerate(self._workflow)}
        files = [
            image
            for node_id in sorted(outputs, key=lambda n: order.get(n, len(order)))
            for image in (outputs[node_id] or {}).get("images") or []
        ]
        files.sort(key=lambda image: image.get("type") != "output")
        if not files:
            raise BadResponse(
                self.provider_id, "the workflow ran but saved no image (add a SaveImage node)"
            )
        image = files[0]
        params = {
            "filename": image["filename"],
            "subfolder": image.get("subfolder", ""),
            "type": image.get("type", "output"),
        }
        data, _ = await request_bytes(
            self._session, "GET", f"{url}/view",
            provider=self.provider_id, params=params, attempts=self._attempts,
        )  # fmt: skip
        extension = image["filename"].rsplit(".", 1)[-1].lower()
        image_format = {"jpg": "jpeg"}.get(extension, extension)
        return RenderedImage(data=data, seed=seed, format=image_format)

    async def _forget(self, url: str, prompt_id: str | None, running: bool) -> None:
        """Best effort: drop our prompt from the queue, or stop it if it is the one running."""
        if prompt_id is None:
            return
        calls = [("/queue", {"delete": [prompt_id]})]
        if running:  # newer servers stop only this prompt; older ones stop the current, ours
            calls.append(("/interrupt", {"prompt_id": prompt_id}))
        for path, body in calls:
            try:
                async with self._session.post(
                    url + path, json=body, timeout=aiohttp.ClientTimeout(total=5)
                ):
                    pass
            except (aiohttp.ClientError, TimeoutError):
                return
