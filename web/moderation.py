"""The moderator's side: sign in and out, CSV export, deleting a batch, the queue."""

from __future__ import annotations

import asyncio
import io
import shutil

from aiohttp import web

from imagebot.commands.export import export_archive, parse_since
from imagebot.web.auth import MODERATOR_COOKIE, set_moderator_cookie
from imagebot.web.errors import bad_request, redirect
from imagebot.web.pages import batch_folder, shown_batch, site_of


async def login_form(request: web.Request) -> web.StreamResponse:
    site = site_of(request)
    return site.page(request, "login.html", failed=False)


async def login(request: web.Request) -> web.StreamResponse:
    """The token typed in the form: a signed HttpOnly cookie (never the token itself)."""
    site = site_of(request)
    data = await site.form(request)
    if site.auth.token is None:
        return redirect("/")  # nothing to sign in to: loopback's local user already moderates
    if not site.auth.token_matches(data.get("token", "").strip()):
        return site.page(request, "login.html", status=403, failed=True)
    response = redirect("/")
    set_moderator_cookie(response, request, site.auth.moderator_cookie())
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    site = site_of(request)
    await site.form(request)
    response = redirect("/")
    response.del_cookie(MODERATOR_COOKIE, path="/")
    return response


async def export(request: web.Request) -> web.StreamResponse:
    """The archive index as CSV (SPEC §5), streamed out of a worker thread."""
    site = site_of(request)
    site.moderator(request)
    since_text = request.query.get("since", "").strip() or None
    since = parse_since(since_text)  # UsageError -> 400
    stream = io.StringIO()
    await asyncio.to_thread(export_archive, site.services.index, since=since, stream=stream)
    return web.Response(
        body=stream.getvalue().encode("utf-8"),
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": 'attachment; filename="export.csv"',
            "Cache-Control": "no-store",
        },
    )


async def delete(request: web.Request) -> web.StreamResponse:
    """Remove a batch's files from the archive; its index row stays, marked deleted."""
    site = site_of(request)
    await site.form(request)
    visitor = site.moderator(request)
    row = shown_batch(site, request)
    if site.in_object_store(row):
        await site.services.archive.remove_remote(row["folder"])
    else:
        folder = batch_folder(site, row)
        if folder == site.root.resolve():
            raise bad_request("That batch's folder is the archive itself; it was not deleted.")
        await asyncio.to_thread(shutil.rmtree, folder)
    site.thumbs.forget(row["id"])
    site.gallery.mark_removed(row["id"], f"web:{visitor.public_id}")
    return redirect("/?deleted=1")


async def queue(request: web.Request) -> web.StreamResponse:
    site = site_of(request)
    site.moderator(request)
    return site.page(request, "queue.html", jobs=site.gallery.queue())
