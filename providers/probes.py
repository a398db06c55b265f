"""One probe per provider: cheap read-only endpoints (model lists, account, status), never a
render, turned into one line a user can act on: a wrong URL, a path in the URL, a WebUI started
without --api, a refused key, a refused connection or a time-out. Details name variables, never
their values.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
from yarl import URL

from imagebot.providers.catalog import ANONYMOUS_HORDE_KEY
from imagebot.providers.health import Health, ServerHealth
from imagebot.providers.http_errors import error_for_exception, server_message

if TYPE_CHECKING:
    from imagebot.providers.catalog import ProviderOptions

OPENAI_DEFAULT_BASE = "https://api.openai.com/v1"
HORDE_CLIENT_AGENT = "imagebot:0.1:unknown"
TOP_MODELS = 5


class ProbeFailed(Exception):
    """A probe found the reason a provider cannot work; the message is for the user."""


@dataclass
class Answer:
    """One HTTP answer as a probe needs it."""

    status: int
    content_type: str
    text: str

    @property
    def is_html(self) -> bool:
        start = self.text.lstrip()[:15].lower()
        return "html" in self.content_type or start.startswith(("<!doctype", "<html"))

    def json(self) -> Any:
        try:
            return json.loads(self.text)
        except ValueError:
            raise ProbeFailed(
                f"the server sent an answer that is not JSON: {self.text[:80]!r}"
            ) from None

    @property
    def message(self) -> str:
        return server_message(self.text)


def shown(url: str) -> str:
    """A URL safe to show: user:password@ removed."""
    parsed = URL(url)
    return str(parsed.with_user(None)) if parsed.user or parsed.password else url


def url_path(url: str) -> str:
    """The path part of a configured URL, '' for a server root."""
    return URL(url).path.rstrip("/")


async def fetch(
    session: aiohttp.ClientSession,
    url: str,
    timeout: float,
    headers: dict[str, str] | None = None,
) -> Answer:
    """One GET, no retries; transport failures become ProbeFailed in the shared wording."""
    try:
        async with session.get(
            url, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as response:
            text = await response.text(errors="replace")
            return Answer(response.status, response.headers.get("Content-Type", ""), text)
    except (aiohttp.ClientError, TimeoutError) as exc:
        error = error_for_exception("probe", exc)
        message = error.message
        if isinstance(exc, aiohttp.ClientConnectorError):
            message += " (is the server running, and is the host and port right?)"
        elif isinstance(exc, TimeoutError):
            message = f"the server did not answer within {timeout:g} s"
        raise ProbeFailed(message) from None


def _http_problem(answer: Answer) -> str:
    return f"HTTP {answer.status}: {answer.message[:200]}"


# --------------------------------------------------------------------------- WebUI


async def _webui_server(
    session: aiohttp.ClientSession, url: str, timeout: float
) -> tuple[str, list[str]]:
    """(current checkpoint, checkpoints) of one A1111-compatible server, or ProbeFailed."""
    from imagebot.providers.webui import API, server_root

    root = server_root(url)
    path = url_path(root)
    answer = await fetch(session, f"{root}{API}/sd-models", timeout)
    if answer.status == 200 and answer.is_html:
        raise ProbeFailed(_path_advice(path, "this URL is not the WebUI API root"))
    if answer.status == 404:
        if path:
            raise ProbeFailed(_path_advice(path, "this URL is not the WebUI API root"))
        front = await fetch(session, f"{root}/", timeout)
        if front.status == 200:
            raise ProbeFailed(
                "the WebUI answers but its API is off: start it with --api "
                "(add it to COMMANDLINE_ARGS)"
            )
        raise ProbeFailed(f"no WebUI API here (HTTP 404 on {API}/sd-models): check the URL")
    if answer.status in (401, 403):
        raise ProbeFailed(
            f"the WebUI wants API credentials (--api-auth, HTTP {answer.status}): put them in "
            "STABLE_DIFFUSION_URL as http://user:password@host:port"
        )
    if answer.status >= 400:
        raise ProbeFailed(_http_problem(answer))
    listed = answer.json()
    if not isinstance(listed, list):
        raise ProbeFailed("this URL is not the WebUI API root: /sd-models is not a list")
    models = [str(item.get("title") or item.get("model_name")) for item in listed if item]
    current = ""
    options = await fetch(session, f"{root}{API}/options", timeout)
    if options.status == 200 and not options.is_html:
        data = options.json()
        if isinstance(data, dict) and isinstance(data.get("sd_model_checkpoint"), str):
            current = data["sd_model_checkpoint"]
    if not models:
        raise ProbeFailed("the WebUI has no checkpoint in models/Stable-diffusion")
    return current or models[0], models


def _path_advice(path: str, what: str) -> str:
    if path:
        return f"{what} (remove the path {path!r}: give the server root, e.g. http://host:7860)"
    return f"{what}: it answers with a web page; check the host and port"


async def _probe_pool(
    urls: tuple[str, ...],
    probe: Any,
) -> tuple[str, list[str], list[ServerHealth]]:
    """Probe every server of a pool at once; the model of the first that answers."""
    results = await asyncio.gather(*(probe(url) for url in urls), return_exceptions=True)
    servers: list[ServerHealth] = []
    model, models = "", []
    for url, result in zip(urls, results, strict=True):
        if isinstance(result, ProbeFailed):
            servers.append(ServerHealth(shown(url), False, str(result)))
        elif isinstance(result, BaseException):
            servers.append(ServerHealth(shown(url), False, f"{type(result).__name__}: {result}"))
        else:
            current, listed = result
            servers.append(ServerHealth(shown(url), True, current))
            if not model:
                model, models = current, listed
    return model, models, servers


def _pool_verdict(servers: list[ServerHealth]) -> tuple[bool, str]:
    up = [s for s in servers if s.ok]
    if len(servers) == 1:
        return bool(up), servers[0].detail if not up else ""
    down = [s for s in servers if not s.ok]
    if not down:
        return True, f"all {len(servers)} servers answer"
    names = "; ".join(f"{s.url}: {s.detail}" for s in down)
    return bool(up), f"{len(up)} of {len(servers)} servers answer; down: {names}"


async def probe_webui(
    options: ProviderOptions, session: aiohttp.ClientSession, timeout: float
) -> Health:
    """Every STABLE_DIFFUSION_URL server: its checkpoints and the one loaded."""
    urls = options.stable_diffusion_urls

    async def one(url: str) -> tuple[str, list[str]]:
        return await _webui_server(session, url, timeout)

    model, models, servers = await _probe_pool(urls, one)
    ok, detail = _pool_verdict(servers)
    return Health("stable-diffusion", ok, model, models, detail=detail, servers=_pool(servers))


def _pool(servers: list[ServerHealth]) -> list[ServerHealth]:
    return servers if len(servers) > 1 else []


# --------------------------------------------------------------------------- ComfyUI


async def _comfy_server(
    session: aiohttp.ClientSession, url: str, timeout: float, wanted: str | None
) -> tuple[str, list[str]]:
    root = url.rstrip("/")
    path = url_path(root)
    stats = await fetch(session, f"{root}/system_stats", timeout)
    if stats.is_html or stats.status == 404:
        raise ProbeFailed(_path_advice(path, "this URL is not a ComfyUI server root"))
    if stats.status >= 400:
        raise ProbeFailed(_http_problem(stats))
    info = await fetch(session, f"{root}/object_info/CheckpointLoaderSimple", timeout)
    if info.status >= 400:
        raise ProbeFailed(f"object_info failed: {_http_problem(info)}")
    try:
        spec = info.json()["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"]
        # Older servers: [[names], {...}]; newer: ["COMBO", {"options": [names]}].
        names = spec[0] if isinstance(spec[0], list) else spec[1]["options"]
    except (KeyError, IndexError, TypeError):
        names = []
    names = [str(name) for name in names]
    if not names:
        raise ProbeFailed("ComfyUI has no checkpoint in models/checkpoints")
    if wanted and wanted not in names:
        raise ProbeFailed(
            f"COMFYUI_CHECKPOINT {wanted!r} is not on this server; it has: {', '.join(names)}"
        )
    return wanted or names[0], names


async def probe_comfyui(
    options: ProviderOptions, session: aiohttp.ClientSession, timeout: float
) -> Health:
    """Every COMFYUI_URL server: system stats and its checkpoints."""
    wanted = options.comfyui_checkpoint

    async def one(url: str) -> tuple[str, list[str]]:
        return await _comfy_server(session, url, timeout, wanted)

    model, models, servers = await _probe_pool(options.comfyui_urls, one)
    ok, detail = _pool_verdict(servers)
    return Health("comfyui", ok, model, models, detail=detail, servers=_pool(servers))


# --------------------------------------------------------------------------- Horde


async def probe_horde(
    options: ProviderOptions, session: aiohttp.ClientSession, timeout: float
) -> Health:
    """Heartbeat, the key's user and kudos, and the models most workers serve."""
    api = options.horde_url.rstrip("/") + "/api/v2"
    key = options.horde_api_key or ANONYMOUS_HORDE_KEY
    heartbeat = await fetch(session, f"{api}/status/heartbeat", timeout)
    if heartbeat.is_html or heartbeat.status == 404:
        raise ProbeFailed(
            "HORDE_URL is not the Horde's root (give e.g. https://aihorde.net; "
            "the client adds /api/v2)"
        )
    if heartbeat.status >= 400:
        raise ProbeFailed(f"the Horde is not well: {_http_problem(heartbeat)}")
    headers = {"apikey": key, "Client-Agent": HORDE_CLIENT_AGENT}
    user = await fetch(session, f"{api}/find_user", timeout, headers=headers)
    if user.status in (401, 403, 404):
        raise ProbeFailed(f"HORDE_API_KEY is refused: the Horde knows no user with it "
                          f"(HTTP {user.status})")  # fmt: skip
    if user.status >= 400:
        raise ProbeFailed(f"find_user failed: {_http_problem(user)}")
    found = user.json() if user.status == 200 else {}
    if key == ANONYMOUS_HORDE_KEY:
        account = "anonymous key: no kudos, so small images and long queues"
    else:
        kudos = found.get("kudos", 0) if isinstance(found, dict) else 0
        name = found.get("username", "?") if isinstance(found, dict) else "?"
        account = f"user {name}, {float(kudos):,.0f} kudos"
    listed = await fetch(session, f"{api}/status/models?type=image", timeout)
    models: list[str] = []
    if listed.status == 200:
        data = listed.json()
        if isinstance(data, list):
            ranked = sorted(
                (m for m in data if isinstance(m, dict) and m.get("name")),
                key=lambda m: -float(m.get("count") or 0),
            )
            models = [f"{m['name']} ({m.get('count', 0)} workers)" for m in ranked[:TOP_MODELS]]
    return Health("horde", True, "", models, detail=account)


# --------------------------------------------------------------------------- Stability


async def probe_stability(
    options: ProviderOptions, session: aiohttp.ClientSession, timeout: float
) -> Health:
    """The key's credit balance (a read-only call that needs a valid key)."""
    key = options.stability_api_key or ""
    host = options.stability_api_host.rstrip("/")
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
    answer = await fetch(session, f"{host}/v1/user/balance", timeout, headers=headers)
    if answer.status in (401, 403):
        raise ProbeFailed(f"STABILITY_API_KEY is refused (HTTP {answer.status})")
    if answer.is_html or answer.status == 404:
        raise ProbeFailed(
            _path_advice(url_path(host), "STABILITY_API_HOST is not the Stability API root")
        )
    if answer.status >= 400:
        raise ProbeFailed(_http_problem(answer))
    data = answer.json()
    credits = data.get("credits") if isinstance(data, dict) else None
    detail = f"{float(credits):,.2f} credits" if isinstance(credits, int | float) else ""
    if isinstance(credits, int | float) and credits <= 0:
        return Health("stability", False, options.stability_model, detail="no credits left")
    return Health("stability", True, options.stability_model, [options.stability_model],
                  detail=detail)  # fmt: skip


# --------------------------------------------------------------------------- OpenAI images


async def probe_openai(
    options: ProviderOptions, session: aiohttp.ClientSession, timeout: float
) -> Health:
    """GET {base}/models with the key: OpenAI, or any OpenAI-compatible image server."""
    key = options.openai_api_key or ""
    base = (options.openai_base_url or OPENAI_DEFAULT_BASE).rstrip("/")
    where = "OPENAI_BASE_URL" if options.openai_base_url else "the OpenAI API"
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    answer = await fetch(session, f"{base}/models", timeout, headers=headers)
    if answer.status in (401, 403):
        if key:
            raise ProbeFailed(f"OPENAI_API_KEY is refused by {where} (HTTP {answer.status})")
        raise ProbeFailed(f"{where} wants a key (HTTP {answer.status}): set OPENAI_API_KEY")
    if answer.is_html or answer.status == 404:
        raise ProbeFailed(
            f"{where} is not an OpenAI-compatible API root "
            f"(HTTP {answer.status} on /models; it usually ends in /v1)"
        )
    if answer.status >= 400:
        raise ProbeFailed(_http_problem(answer))
    data = answer.json()
    items = data.get("data") if isinstance(data, dict) else data
    names = [str(m.get("id")) for m in items or [] if isinstance(m, dict) and m.get("id")]
    image_names = [n for n in names if n.startswith(("dall-e", "gpt-image"))]
    models = image_names if not options.openai_base_url and image_names else names
    detail = ""
    if names and options.image_model not in names:
        detail = f"note: the server does not list IMAGEBOT_IMAGE_MODEL {options.image_model!r}"
    return Health("dalle", True, options.image_model, models, detail=detail)


async def probe_local(
    options: ProviderOptions, session: aiohttp.ClientSession, timeout: float
) -> Health:
    """The offline renderer always answers."""
    return Health("local", True, detail="offline, no network needed")


PROBES = {
    "dalle": probe_openai,
    "stable-diffusion": probe_webui,
    "stability": probe_stability,
    "comfyui": probe_comfyui,
    "horde": probe_horde,
    "local": probe_local,
}
