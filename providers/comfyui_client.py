"""HTTP and websocket calls to one ComfyUI server, each bounded by a first-byte time-out.

No retries here: the provider retries whole jobs within their budget (providers.budget).
Errors are phrased for the user and name the server.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from typing import Any

import aiohttp
from yarl import URL

from imagebot.providers.base import BadResponse, ProviderError, Unavailable
from imagebot.providers.budget import ANSWER_TIMEOUT, CONNECT_TIMEOUT
from imagebot.providers.comfyui_workflow import rejection_message
from imagebot.providers.http_errors import error_for_exception, error_for_status
from imagebot.providers.multipart import multipart

PROVIDER_ID = "comfyui"


def host_of(url: str) -> str:
    """`host:port` of a server, for messages (never its credentials)."""
    parsed = URL(url)
    return f"{parsed.host}:{parsed.port}" if parsed.port else str(parsed.host)


def seconds(value: float) -> str:
    """A duration for a message: "20 s", or "0.2 s" for the tiny budgets of tests."""
    return f"{value:.0f} s" if value >= 10 else f"{value:.1f} s".replace(".0 s", " s")


def combo_options(spec: Any) -> list[str]:
    """The choices of a COMBO input in /object_info: [[names], {...}] or ["COMBO", {"options"}]."""
    try:
        names = spec[0] if isinstance(spec[0], list) else spec[1]["options"]
    except (KeyError, IndexError, TypeError):
        return []
    return [str(name) for name in names] if isinstance(names, list) else []


class ComfyClient:
    """Requests to any server of a pool; `answer_timeout` bounds the wait for each answer."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        answer_timeout: float = ANSWER_TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
    ):
        self._session = session
        self.answer_timeout = answer_timeout
        self.connect_timeout = connect_timeout

    async def call(self, url: str, method: str, path: str, **kwargs: Any) -> bytes:
        """The body of one request; an error status becomes the right ProviderError."""
        limits = aiohttp.ClientTimeout(total=self.answer_timeout, sock_connect=self.connect_timeout)
        try:
            async with self._session.request(
                method, url + path, timeout=limits, **kwargs
            ) as response:
                body = await response.read()
                if response.status == 400 and path == "/prompt":
                    raise ProviderError(
                        PROVIDER_ID, rejection_message(body.decode("utf-8", "replace"))
                    )
                if response.status >= 400:
                    text = body.decode("utf-8", "replace")
                    raise error_for_status(PROVIDER_ID, response.status, text, response.headers)
                return body
        except ProviderError:
            raise
        except aiohttp.ConnectionTimeoutError as exc:
            raise Unavailable(
                PROVIDER_ID, f"cannot connect to ComfyUI at {host_of(url)} within "
                f"{seconds(self.connect_timeout)}",
            ) from exc  # fmt: skip
        except TimeoutError as exc:
            raise Unavailable(
                PROVIDER_ID, f"waiting for ComfyUI at {host_of(url)}: no answer for "
                f"{seconds(self.answer_timeout)} ({method} {path})",
            ) from exc  # fmt: skip
        except aiohttp.ClientError as exc:
            raise error_for_exception(PROVIDER_ID, exc) from exc

    async def json(self, url: str, method: str, path: str, **kwargs: Any) -> Any:
        body = await self.call(url, method, path, **kwargs)
        try:
            return json.loads(body) if body.strip() else None
        except ValueError:
            raise BadResponse(
                PROVIDER_ID, f"ComfyUI at {host_of(url)} answered {path} with broken JSON"
            ) from None

    async def queue(self, url: str, workflow: dict[str, Any], client_id: str) -> str:
        """POST /prompt; the prompt id (a 400 is the server's rejection, in one line)."""
        data = await self.json(
            url, "POST", "/prompt", json={"prompt": workflow, "client_id": client_id}
        )
        if not isinstance(data, dict) or not data.get("prompt_id"):
            raise BadResponse(PROVIDER_ID, "POST /prompt answered without a prompt_id")
        return str(data["prompt_id"])

    async def history(self, url: str, prompt_id: str) -> dict[str, Any] | None:
        """The history entry of a prompt, or None while it has not run."""
        data = await self.json(url, "GET", f"/history/{prompt_id}")
        entry = data.get(prompt_id) if isinstance(data, dict) else None
        return entry if isinstance(entry, dict) else None

    async def queue_place(self, url: str, prompt_id: str) -> tuple[str, int]:
        """("running", 0), ("pending", prompts ahead) or ("gone", 0) from GET /queue."""
        data = await self.json(url, "GET", "/queue")
        data = data if isinstance(data, dict) else {}
        running = [item[1] for item in data.get("queue_running") or [] if len(item) > 1]
        pending = sorted(
            (item for item in data.get("queue_pending") or [] if len(item) > 1),
            key=lambda item: item[0],
        )
        if prompt_id in running:
            return "running", 0
        ids = [item[1] for item in pending]
        if prompt_id in ids:
            return "pending", ids.index(prompt_id) + len(running)
        return "gone", 0

    async def view(self, url: str, image: dict[str, Any]) -> bytes:
        """GET /view of one output file ({"filename", "subfolder", "type"})."""
        params = {
            "filename": str(image["filename"]),
            "subfolder": str(image.get("subfolder", "")),
            "type": str(image.get("type", "output")),
        }
        return await self.call(url, "GET", "/view", params=params)

    async def upload(self, url: str, data: bytes) -> str:
        """POST /upload/image into input/; the name the server stored it under.

        The name is the content's hash, so a retry overwrites the same file with the same bytes
        and two pictures never share a name.
        """
        extension = "jpg" if data.startswith(b"\xff\xd8") else "png"
        name = f"imagebot_{hashlib.sha256(data).hexdigest()[:20]}.{extension}"
        content_type = "image/jpeg" if extension == "jpg" else "image/png"
        body, header = multipart(
            {"overwrite": "true", "type": "input"}, {"image": (name, data, content_type)}
        )
        answer = await self.json(
            url, "POST", "/upload/image", data=body, headers={"Content-Type": header}
        )
        if not isinstance(answer, dict) or not answer.get("name"):
            raise BadResponse(PROVIDER_ID, "POST /upload/image answered without the file's name")
        subfolder = str(answer.get("subfolder") or "")
        return f"{subfolder}/{answer['name']}" if subfolder else str(answer["name"])

    async def options(self, url: str, node_class: str, input_name: str) -> list[str] | None:
        """The choices of a node's input from /object_info; None when the node is not installed."""
        info = await self.json(url, "GET", f"/object_info/{node_class}")
        node = info.get(node_class) if isinstance(info, dict) else None
        if not isinstance(node, dict):
            return None
        required = (node.get("input") or {}).get("required") or {}
        return combo_options(required.get(input_name))

    async def forget(self, url: str, prompt_id: str | None, running: bool) -> None:
        """Best effort: drop our prompt from the queue, or stop it if it is the one running."""
        if prompt_id is None:
            return
        calls = [("/queue", {"delete": [prompt_id]})]
        if running:  # newer servers stop only this prompt; older ones stop the current, ours
            calls.append(("/interrupt", {"prompt_id": prompt_id}))
        for path, body in calls:
            try:
                async with self._session.post(
                    url + path,
                    json=body,
                    timeout=aiohttp.ClientTimeout(total=min(5.0, self.answer_timeout)),
                ):
                    pass
            except (aiohttp.ClientError, TimeoutError):
                return

    async def connect(self, url: str, client_id: str) -> aiohttp.ClientWebSocketResponse | None:
        """The /ws websocket for `client_id`; None behind a proxy without websockets."""
        ws_url = re.sub(r"^http", "ws", url) + f"/ws?clientId={client_id}"
        try:
            async with asyncio.timeout(self.answer_timeout):
                return await self._session.ws_connect(
                    ws_url,
                    heartbeat=30,
                    timeout=aiohttp.ClientWSTimeout(ws_close=min(5.0, self.answer_timeout)),
                )
        except aiohttp.WSServerHandshakeError:
            return None  # a proxy that does not pass websockets: poll /history instead
        except TimeoutError as exc:
            raise Unavailable(
                PROVIDER_ID, f"waiting for ComfyUI at {host_of(url)}: no answer for "
                f"{seconds(self.answer_timeout)} (GET /ws)",
            ) from exc  # fmt: skip
        except aiohttp.ClientError as exc:
            raise error_for_exception(PROVIDER_ID, exc) from exc
