"""The OpenAI fake's multipart image routes: reading the form, and the 400s the real API gives.

Variations: dall-e-2 only; `image` a square PNG under 4 MB; n 1-10; size 256x256, 512x512 or
1024x1024. Edits: `image` (or `image[]`) and `prompt` required; gpt-image models take PNG, WebP
or JPEG under 50 MB and no `response_format`; dall-e-2 takes a square PNG under 4 MB.
"""

from __future__ import annotations

import io
from typing import Any

from aiohttp import web
from PIL import Image

Problem = tuple[str, str | None, str | None] | None
FOUR_MB = 4 * 1024 * 1024
FIFTY_MB = 50 * 1024 * 1024


async def read_form(request: web.Request) -> tuple[dict[str, str], dict[str, bytes]]:
    """The text fields and files of a multipart body (empty when it is not multipart)."""
    fields: dict[str, str] = {}
    files: dict[str, bytes] = {}
    if not request.content_type.startswith("multipart/form-data"):
        return fields, files
    form = await request.post()
    for key, value in form.items():
        if isinstance(value, web.FileField):
            files[key] = value.file.read()
        else:
            fields[key] = str(value)
    return fields, files


def _opened(data: bytes) -> tuple[str, tuple[int, int]] | None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            return str(image.format), image.size
    except OSError:
        return None


def _common(fields: dict[str, str], max_n: int) -> Problem:
    n = fields.get("n", "1")
    if not n.isdigit() or not 1 <= int(n) <= max_n:
        return f"Invalid 'n': expected a value from 1 to {max_n}, but got {n} instead.", "n", None
    return None


def variation_problem(
    fields: dict[str, str], files: dict[str, bytes], model: str, models: dict, accept_any: bool
) -> Problem:
    """The 400 of POST /v1/images/variations for this form, or None."""
    if model != "dall-e-2" and not (accept_any and model not in models):
        return f"Invalid model {model}. The model argument should be left blank.", "model", None
    image = files.get("image")
    if image is None:
        return "Missing required parameter: 'image'.", "image", "missing_required_parameter"
    opened = _opened(image)
    if opened is None or opened[0] != "PNG" or len(image) >= FOUR_MB:
        return "Uploaded image must be a PNG and less than 4 MB.", "image", None
    if opened[1][0] != opened[1][1]:
        return "Invalid input image - image must be square.", "image", None
    if fields.get("size", "1024x1024") not in ("256x256", "512x512", "1024x1024"):
        sizes = "'256x256', '512x512', '1024x1024'"
        message = f"Invalid value: '{fields['size']}'. Supported values are: {sizes}."
        return message, "size", "invalid_value"
    if fields.get("response_format", "url") not in ("url", "b64_json"):
        return "Invalid value for 'response_format'.", "response_format", None
    return _common(fields, 10)


def edit_problem(
    fields: dict[str, str], files: dict[str, bytes], model: str, models: dict, accept_any: bool
) -> Problem:
    """The 400 of POST /v1/images/edits for this form, or None."""
    rules: Any = models.get(model)
    if rules is None and not accept_any:
        return f"The model '{model}' does not exist.", "model", "model_not_found"
    if model == "dall-e-3":
        return "Invalid value: 'dall-e-3'. dall-e-3 does not support edits.", "model", None
    if not fields.get("prompt", "").strip():
        return "Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter"
    image = files.get("image") or files.get("image[]")
    if image is None:
        return "Missing required parameter: 'image'.", "image", "missing_required_parameter"
    opened = _opened(image)
    gpt = model.startswith("gpt-image")
    if gpt and (
        opened is None or opened[0] not in ("PNG", "WEBP", "JPEG") or len(image) >= FIFTY_MB
    ):
        return "Invalid image file: use a PNG, WebP or JPEG under 50 MB.", "image", None
    if not gpt and (opened is None or opened[0] != "PNG" or len(image) >= FOUR_MB):
        return "Uploaded image must be a PNG and less than 4 MB.", "image", None
    if gpt and "response_format" in fields:
        return "Unknown parameter: 'response_format'.", "response_format", "unknown_parameter"
    sizes = rules[0] if rules else ()
    if sizes and fields.get("size", sizes[0]) not in sizes:
        allowed = ", ".join(f"'{s}'" for s in sizes)
        message = f"Invalid value: '{fields['size']}'. Supported values are: {allowed}."
        return message, "size", "invalid_value"
    return _common(fields, rules[1] if rules else 10)
