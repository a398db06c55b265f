"""The Try-it page: chat commands typed in the browser, answered over Server-Sent Events."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from typing import Any

from aiohttp import web

from imagebot.commands.catalog import COMMANDS
from imagebot.commands.invocation import Invocation
from imagebot.commands.requester import Requester
from imagebot.storage.text import clean
from imagebot.web.auth import VISITOR, Visitor
from imagebot.web.chat import WebPort
from imagebot.web.errors import HEADERS, bad_request, not_found, redirect
from imagebot.web.pages import site_of

REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")
COMMAND = re.compile(r"/([A-Za-z_]+)(?:@\S+)?(?:\s+(.*))?", re.DOTALL)
MAX_TEXT = 1000
PING = 15.0  # seconds between keep-alive comments on an idle stream
EXAMPLE = "/generate 2 256x256 a foggy harbour"


def requester(visitor: Visitor) -> Requester:
    """The web visitor as every command and archive row sees them (platform "web")."""
    return Requester(
        platform="web",
        user_id=visitor.public_id,
        user_name=f"web-{visitor.public_id[:8]}",
        chat_id=visitor.public_id,
    )


def wants_json(request: web.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def turns(events: list[tuple[int, dict[str, Any]]]) -> list[dict[str, Any]]:
    """The backlog grouped as the page shows it: one turn per request, its progress line
    only while no answer has come."""
    found: dict[str, dict[str, Any]] = {}
    for _, event in events:
        turn = found.setdefault(event.get("request") or "none", {"events": [], "live": None})
        if event["type"] in ("ack", "progress"):
            turn["live"] = event["text"]
        else:
            turn["events"].append(event)
            if event["type"] != "you":
                turn["live"] = None
    return [{"request": key, **turn} for key, turn in found.items()]


async def page(request: web.Request) -> web.StreamResponse:
    """The conversation so far, rendered on the server (it works without JavaScript); the
    script streams what comes after it."""
    site = site_of(request)
    channel = site.hub.channel(request[VISITOR].public_id)
    return site.page(request, "chat.html", commands=COMMANDS, example=EXAMPLE,
                     turns=turns(channel.since(0)), after=channel.seq)  # fmt: skip


def _request_id(data: dict[str, str]) -> str:
    offered = data.get("request", "")
    return offered if REQUEST_ID.fullmatch(offered) else secrets.token_hex(6)


async def _dispatch(request: web.Request, invocation: Invocation, port: WebPort) -> Any:
    """Run the command in the background: its answer streams to the page, the POST returns."""
    site = site_of(request)
    task = asyncio.create_task(site.chat.handle(invocation, port))
    site.tasks.add(task)
    task.add_done_callback(site.tasks.discard)
    if wants_json(request):
        return web.json_response({"request": port.request}, status=202)
    return redirect("/chat")


async def send(request: web.Request) -> web.StreamResponse:
    """One line typed in the chat box: `/command words…`."""
    site = site_of(request)
    data = await site.form(request)
    visitor: Visitor = request[VISITOR]
    text = clean(data.get("text", "")).strip()
    if not text:
        raise bad_request(f"Type a command, for example {EXAMPLE}.")
    if len(text) > MAX_TEXT:
        raise bad_request(f"That message is too long; keep it under {MAX_TEXT} characters.")
    request_id = _request_id(data)
    reply = {"visitor": visitor.public_id, "request": request_id}
    port = WebPort(site.hub, reply)
    site.hub.publish(visitor.public_id, {"type": "you", "text": text, "request": request_id})
    match = COMMAND.fullmatch(text)
    if match is None:
        await port.text(f"Commands start with a slash, for example {EXAMPLE}; see /help.")
        return (
            web.json_response({"request": request_id}, status=202)
            if wants_json(request)
            else redirect("/chat")
        )
    invocation = Invocation(
        requester=requester(visitor),
        command=match[1].lower(),
        args={"text": (match[2] or "").strip()},
        is_moderator=visitor.moderator,
        reply=reply,
    )
    return await _dispatch(request, invocation, port)


async def button(request: web.Request) -> web.StreamResponse:
    """A press on a batch's button (in the chat or on a batch page): the same handling as the
    bots' buttons; the id is unpacked, and refused if it is not ours, by the commands."""
    site = site_of(request)
    data = await site.form(request)
    visitor: Visitor = request[VISITOR]
    custom_id = data.get("id", "")[:64]
    request_id = _request_id(data)
    post = custom_id.split(":")[2] if custom_id.count(":") >= 2 else None
    reply = {"visitor": visitor.public_id, "request": request_id, "post": post}
    label = data.get("label", "")[:40] or custom_id
    site.hub.publish(visitor.public_id, {"type": "you", "text": f"[{clean(label)}]",
                                         "request": request_id})  # fmt: skip
    invocation = Invocation(
        requester=requester(visitor),
        command="button",
        args={"custom_id": custom_id},
        is_moderator=visitor.moderator,
        reply=reply,
    )
    return await _dispatch(request, invocation, WebPort(site.hub, reply))


def _last_seen(request: web.Request) -> int:
    raw = request.headers.get("Last-Event-ID") or request.query.get("after", "0")
    return int(raw) if raw.isdigit() else 0


async def events(request: web.Request) -> web.StreamResponse:
    """The visitor's answers as Server-Sent Events: what came since the last one seen, then
    each new one as it happens."""
    site = site_of(request)
    visitor: Visitor = request[VISITOR]
    channel = site.hub.channel(visitor.public_id)
    response = web.StreamResponse(
        headers={**HEADERS, "Content-Type": "text/event-stream", "Cache-Control": "no-store"}
    )
    site.keep_session(request, response)
    await response.prepare(request)
    seen = _last_seen(request)
    try:
        while not site.closing.is_set():
            for seq, event in channel.since(seen):
                payload = json.dumps(event, ensure_ascii=False)
                await response.write(f"id: {seq}\ndata: {payload}\n\n".encode())
                seen = seq
            changed = asyncio.ensure_future(channel.changed.wait())
            closing = asyncio.ensure_future(site.closing.wait())
            done, pending = await asyncio.wait({changed, closing}, timeout=PING,
                                               return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
            for waiter in pending:
                waiter.cancel()
            if not done:
                await response.write(b": ping\n\n")
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    return response


async def chat_file(request: web.Request) -> web.StreamResponse:
    """A file the chat handed this visitor (an export, a prompt list)."""
    site = site_of(request)
    found = site.hub.file(request[VISITOR].public_id, request.match_info["key"])
    if found is None:
        raise not_found("That download has expired; ask again in the chat.")
    name, data = found
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:80] or "download"
    kind = "text/csv; charset=utf-8" if safe.endswith(".csv") else "application/octet-stream"
    return web.Response(body=data, headers={
        "Content-Type": kind,
        "Content-Disposition": f'attachment; filename="{safe}"',
        "Cache-Control": "no-store",
    })  # fmt: skip
