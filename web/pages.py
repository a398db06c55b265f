"""The archive's pages: the gallery, one batch, its files and the thumbnails."""

from __future__ import annotations

import json
import mimetypes
import re
from pathlib import Path
from typing import Any

from aiohttp import web

from imagebot.commands.captions import buttons
from imagebot.web.auth import VISITOR
from imagebot.web.errors import not_found
from imagebot.web.gallery import Filters, inside, tags_of
from imagebot.web.site import Site

SITE = web.AppKey("site", Site)
# The only names a batch's files can have: numbered images (and their upscales), info files.
FILE_NAME = re.compile(r"(?:[1-9][0-9]{0,2}(?:-upscaled)?\.(?:png|jpe?g|webp)|info\.json|info\.md)")
IMMUTABLE = "public, max-age=31536000, immutable"


def site_of(request: web.Request) -> Site:
    return request.app[SITE]


async def gallery(request: web.Request) -> web.StreamResponse:
    site = site_of(request)
    filters = Filters.parse(request.query)
    page = site.gallery.page(filters)
    return site.page(request, "gallery.html", page=page, filters=filters,
                     facets=site.gallery.facets())  # fmt: skip


def shown_batch(site: Site, request: web.Request) -> dict[str, Any]:
    """The batch of the address, if the visitor may see it; 404 otherwise."""
    row = site.gallery.batch(request.match_info["batch_id"])
    if row is None or row.get("status") not in ("complete", "partial"):
        raise not_found()
    if row.get("deleted_at") and not request[VISITOR].moderator:
        raise not_found("That batch was deleted.")
    return row


def batch_folder(site: Site, row: dict[str, Any]) -> Path:
    """The batch's folder, only when it lies inside the archive."""
    folder = inside(site.root, Path(row.get("folder") or "/nonexistent"))
    if folder is None or not folder.is_dir():
        raise not_found("That batch's files are no longer in the archive.")
    return folder


def read_info(folder: Path) -> dict[str, Any]:
    try:
        info = json.loads((folder / "info.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


async def batch(request: web.Request) -> web.StreamResponse:
    site = site_of(request)
    row = shown_batch(site, request)
    info = await site.remote_info(row) if site.in_object_store(row) else None
    info = read_info(batch_folder(site, row)) if info is None else info
    images = [image for image in info.get("images", []) if isinstance(image, dict)
              and FILE_NAME.fullmatch(str(image.get("file", "")))]  # fmt: skip
    parent = info.get("parent") if isinstance(info.get("parent"), dict) else None
    return site.page(
        request,
        "batch.html",
        row=row,
        info=info,
        tags=tags_of(row),
        images=images,
        upscales=[u for u in info.get("upscales", []) if isinstance(u, dict)],
        parent=parent,
        children=site.gallery.children(row["id"]),
        buttons=buttons(row["id"]),
        recipe=json.dumps(info.get("settings") or {}, indent=2, ensure_ascii=False),
    )


async def batch_file(request: web.Request) -> web.StreamResponse:
    """An image or info file of a batch: names of one known form, inside its folder only."""
    site = site_of(request)
    name = request.match_info["name"]
    if not FILE_NAME.fullmatch(name):
        raise not_found("There is no such file in this batch.")
    row = shown_batch(site, request)
    headers = {"Cache-Control": "public, max-age=3600"}
    if name.startswith("info."):
        headers["Content-Disposition"] = f'attachment; filename="{name}"'
        kind = "application/json" if name.endswith(".json") else "text/markdown"
        headers["Content-Type"] = f"{kind}; charset=utf-8"
    if site.in_object_store(row):
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        headers.setdefault("Content-Type", kind)
        return web.Response(body=await site.remote_file(row, name), headers=headers)
    folder = batch_folder(site, row)
    path = inside(folder, folder / name)
    if path is None or not path.is_file():
        raise not_found("There is no such file in this batch.")
    return web.FileResponse(path, headers=headers)


async def thumbnail(request: web.Request) -> web.StreamResponse:
    """The cached thumbnail of image N, made on first request."""
    site = site_of(request)
    raw = request.match_info["number"]
    if not raw.isdigit() or not 1 <= int(raw) <= 100:
        raise not_found("There is no such image in this batch.")
    number = int(raw)
    row = shown_batch(site, request)
    cached = site.thumbs.path(row["id"], number)
    if not cached.is_file() and site.in_object_store(row):
        files = [image.get("file") for image in (await site.remote_info(row)).get("images", [])]
        name = str(files[number - 1]) if number <= len(files) else ""
        if not FILE_NAME.fullmatch(name):
            raise not_found("There is no such image in this batch.")
        cached = await site.thumbs.get(row["id"], number, lambda: site.remote_file(row, name))
    elif not cached.is_file():
        folder = batch_folder(site, row)
        files = [image.get("file") for image in read_info(folder).get("images", [])]
        name = str(files[number - 1]) if number <= len(files) else ""
        source = inside(folder, folder / name) if FILE_NAME.fullmatch(name) else None
        if source is None:
            raise not_found("There is no such image in this batch.")
        cached = await site.thumbs.get(row["id"], number, source)
    return web.FileResponse(cached, headers={"Cache-Control": IMMUTABLE,
                                             "Content-Type": "image/webp"})  # fmt: skip
