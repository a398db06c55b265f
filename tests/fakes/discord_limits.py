"""Discord's message limits, refused with Discord's real error shapes.

A message body over a limit gets `400 {"code": 50035, "message": "Invalid Form Body",
"errors": {...}}` with the path of the bad field, like
`{"embeds": {"0": {"title": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", ...}]}}}}`.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from tests.fakes.discord_world import IS_COMPONENTS_V2

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_EMBED_TOTAL = 6000
MAX_ATTACHMENTS = 10
MAX_ROWS = 5
MAX_ROW_ITEMS = 5
MAX_CUSTOM_ID = 100
MAX_BUTTON_LABEL = 80
# (field path inside an embed, limit)
EMBED_TEXT_LIMITS: tuple[tuple[tuple[str, ...], int], ...] = (
    (("title",), 256),
    (("description",), 4096),
    (("footer", "text"), 2048),
    (("author", "name"), 256),
)


class DiscordError(Exception):
    """An error answer: HTTP status and Discord's JSON body."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """JSON with `Content-Type: application/json` exactly: discord.py parses nothing else."""
    data = json.dumps(body).encode()
    return web.Response(body=data, status=status, headers=headers, content_type="application/json")


def api_error(status: int, code: int, message: str) -> DiscordError:
    """A plain JSON error such as 404 {"message": "Unknown Channel", "code": 10003}."""
    return DiscordError(status, {"message": message, "code": code})


def form_error(path: list[str | int], code: str, message: str) -> DiscordError:
    """400 Invalid Form Body with one error nested under `path`."""
    errors: dict[str, Any] = {"_errors": [{"code": code, "message": message}]}
    for key in reversed(path):
        errors = {str(key): errors}
    return DiscordError(400, {"code": 50035, "message": "Invalid Form Body", "errors": errors})


def too_long(path: list[str | int], limit: int) -> DiscordError:
    """The error for a string or array over its maximum length."""
    return form_error(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")


def entity_too_large() -> DiscordError:
    """What Discord answers when the uploads exceed the size budget."""
    return api_error(413, 40005, "Request entity too large")


def validate_message(
    payload: dict[str, Any],
    upload_sizes: list[int],
    *,
    upload_limit: int,
    require_body: bool = True,
    kept_attachments: int = 0,
) -> None:
    """Raise DiscordError if the message breaks one of Discord's limits."""
    if sum(upload_sizes) > upload_limit:
        raise entity_too_large()
    content = payload.get("content")
    if content is not None and not isinstance(content, str):
        raise form_error(["content"], "STRING_TYPE_CONVERT", "Could not interpret value as string.")
    if content and len(content) > MAX_CONTENT:
        raise too_long(["content"], MAX_CONTENT)
    embeds = payload.get("embeds") or []
    if len(embeds) > MAX_EMBEDS:
        raise too_long(["embeds"], MAX_EMBEDS)
    _check_embeds(embeds)
    if len(upload_sizes) + kept_attachments > MAX_ATTACHMENTS:
        raise too_long(["attachments"], MAX_ATTACHMENTS)
    components = payload.get("components") or []
    if not int(payload.get("flags") or 0) & IS_COMPONENTS_V2:
        _check_components(components)
    has_body = content or embeds or upload_sizes or kept_attachments or components
    has_body = has_body or payload.get("sticker_ids") or payload.get("poll")
    if require_body and not has_body:
        raise api_error(400, 50006, "Cannot send an empty message")


def _check_embeds(embeds: list[Any]) -> None:
    total = 0
    for index, embed in enumerate(embeds):
        if not isinstance(embed, dict):
            raise form_error(
                ["embeds", index],
                "MODEL_TYPE_CONVERT",
                "Only dictionaries may be used in a ModelType",
            )
        for path, limit in EMBED_TEXT_LIMITS:
            value: Any = embed
            for key in path:
                value = value.get(key) if isinstance(value, dict) else None
            if isinstance(value, str):
                if len(value) > limit:
                    raise too_long(["embeds", index, *path], limit)
                total += len(value)
        fields = embed.get("fields") or []
        if len(fields) > 25:
            raise too_long(["embeds", index, "fields"], 25)
        for f_index, item in enumerate(fields):
            for key, limit in (("name", 256), ("value", 1024)):
                text = str(item.get(key) or "")
                if not text:
                    raise form_error(
                        ["embeds", index, "fields", f_index, key],
                        "BASE_TYPE_REQUIRED",
                        "This field is required",
                    )
                if len(text) > limit:
                    raise too_long(["embeds", index, "fields", f_index, key], limit)
                total += len(text)
    if total > MAX_EMBED_TOTAL:
        raise form_error(
            ["embeds"],
            "MAX_EMBED_SIZE_EXCEEDED",
            f"Embed size exceeds maximum size of {MAX_EMBED_TOTAL}",
        )


def _check_components(rows: list[Any]) -> None:
    if len(rows) > MAX_ROWS:
        raise form_error(
            ["components"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length."
        )
    seen: set[str] = set()
    for r_index, row in enumerate(rows):
        if not isinstance(row, dict) or row.get("type") != 1:
            raise form_error(
                ["components", r_index, "type"],
                "UNION_TYPE_CHOICES",
                'Value of field "type" must be one of (1,).',
            )
        items = row.get("components") or []
        if not 1 <= len(items) <= MAX_ROW_ITEMS:
            raise form_error(
                ["components", r_index, "components"],
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 5 in length.",
            )
        for i_index, item in enumerate(items):
            path: list[str | int] = ["components", r_index, "components", i_index]
            _check_item(item, path, seen)


def _check_item(item: dict[str, Any], path: list[str | int], seen: set[str]) -> None:
    custom_id = item.get("custom_id")
    is_link = item.get("type") == 2 and item.get("style") in (5, 6)
    if custom_id is None and not is_link:
        raise form_error([*path, "custom_id"], "BASE_TYPE_REQUIRED", "This field is required")
    if custom_id is not None:
        if len(str(custom_id)) > MAX_CUSTOM_ID:
            raise too_long([*path, "custom_id"], MAX_CUSTOM_ID)
        if custom_id in seen:
            raise form_error(
                [*path, "custom_id"],
                "COMPONENT_CUSTOM_ID_DUPLICATED",
                "Component custom id cannot be duplicated",
            )
        seen.add(custom_id)
    label = item.get("label")
    if isinstance(label, str) and len(label) > MAX_BUTTON_LABEL:
        raise too_long([*path, "label"], MAX_BUTTON_LABEL)
