"""The WebUI's wire details: server roots, error bodies, image decoding, the seeds in `info`."""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
from typing import Any

from yarl import URL

from imagebot.providers.base import BadResponse, ProviderError

PROVIDER_ID = "stable-diffusion"
API = "/sdapi/v1"
# A pasted API address ("http://host:7860/sdapi/v1/") still means the server root.
API_SUFFIX = re.compile(r"/+(sdapi(/v1)?(/[a-z0-9-]*)?)?/*$")


def server_root(url: str) -> str:
    """The server root of a configured URL: no trailing slash, no /sdapi/v1 tail."""
    return API_SUFFIX.sub("", url.strip())


def shown(url: str) -> str:
    """A URL safe for messages: credentials (user:password@) removed."""
    parsed = URL(url)
    return str(parsed.with_user(None)) if parsed.user or parsed.password else url


def host_of(url: str) -> str:
    """`host:port` of a server, for progress lines."""
    parsed = URL(url)
    return f"{parsed.host}:{parsed.port}" if parsed.port else str(parsed.host)


def seconds(value: float) -> str:
    """A duration for a message: "20 s", or "0.2 s" for the tiny budgets of tests."""
    return f"{value:.0f} s" if value >= 10 else f"{value:.1f} s".replace(".0 s", " s")


def image_format(data: bytes) -> str:
    if data.startswith(b"\xff\xd8"):
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return "png"


def decode_image(text: Any, where: str, what: str) -> bytes:
    """Bytes of a base64 image as A1111 sends it (optionally a data: URL)."""
    if not isinstance(text, str) or not text:
        raise BadResponse(PROVIDER_ID, f"{where} answered {what} without an image")
    try:
        return base64.b64decode(text.split(",", 1)[-1], validate=False)
    except (binascii.Error, ValueError) as exc:
        raise BadResponse(PROVIDER_ID, f"{where} sent an image we cannot decode") from exc


def encode_image(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def pixel_size(data: bytes) -> tuple[int, int]:
    """Width and height of an image, read from its header only."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as opened:
        return opened.size


def reported_seeds(answer: dict, asked: list[int]) -> list[int | None]:
    """The seed of each image, from `info.all_seeds` (the server draws one when asked for -1)."""
    try:
        info = json.loads(answer.get("info") or "{}")
    except (TypeError, ValueError):
        info = {}
    seeds: list[Any] = []
    if isinstance(info, dict):
        listed = info.get("all_seeds")
        if isinstance(listed, list):
            seeds = listed
        elif isinstance(info.get("seed"), int):
            seeds = [info["seed"] + i for i in range(len(asked))]
    result: list[int | None] = []
    for index, seed in enumerate(asked):
        found = seeds[index] if index < len(seeds) else None
        if isinstance(found, int) and not isinstance(found, bool):
            result.append(found)
        else:
            result.append(seed if seed >= 0 else None)
    return result


def a1111_message(body: str) -> str:
    """The useful words of an A1111 error body ({"detail": ...} or its api_middleware shape)."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()[:300] or "no details"
    if not isinstance(data, dict):
        return str(data)[:300]
    detail = data.get("detail")
    if isinstance(detail, list):  # FastAPI validation errors
        parts = []
        for item in detail:
            if isinstance(item, dict):
                field = ".".join(str(p) for p in item.get("loc", [])[1:]) or "body"
                parts.append(f"{field}: {item.get('msg', 'invalid')}")
        return "; ".join(parts) or "invalid request"
    # api_middleware puts str(exception) in "errors", the HTTPException text in "detail"
    for key in ("detail", "errors", "error"):
        if isinstance(data.get(key), str) and data[key].strip():
            return data[key].strip()[:300]
    return body.strip()[:300]


def located(error: ProviderError, url: str) -> ProviderError:
    """The same error, saying which server of the pool it came from."""
    return type(error)(PROVIDER_ID, f"{shown(url)}: {error.message}", retry_after=error.retry_after)
