"""What every handler of one running web app shares: the services, the chat commands, the
index queries, thumbnails, the chat hub, sign-in and CSRF, and the page templates."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from aiohttp import web

from imagebot.storage.object_store import is_remote
from imagebot.web.auth import CSRF_FIELD, CSRF_HEADER, VISITOR, Auth, Visitor, set_session_cookie
from imagebot.web.chat import ChatHub
from imagebot.web.errors import Problem, forbidden, not_found
from imagebot.web.gallery import Gallery
from imagebot.web.thumbs import Thumbnails

if TYPE_CHECKING:
    from imagebot.commands.chat import ChatCommands
    from imagebot.commands.ports import JobQueue
    from imagebot.commands.services import Services

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
MAX_FORM = 64 * 1024


def store_down() -> Problem:
    """503 when the S3 archive cannot be read (down, refusing): the page may work later."""
    return Problem(503, "The archive's file store cannot be reached right now; try again soon.")


def environment() -> jinja2.Environment:
    """Templates with HTML autoescaping on (titles and tags come from users and LLMs)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


@dataclass
class Site:
    services: Services
    chat: ChatCommands
    queue: JobQueue
    auth: Auth
    hub: ChatHub = field(default_factory=ChatHub)
    env: jinja2.Environment = field(default_factory=environment)
    tasks: set[asyncio.Task] = field(default_factory=set)  # chat commands being handled
    closing: asyncio.Event = field(default_factory=asyncio.Event)  # ends the event streams

    def __post_init__(self) -> None:
        self.gallery = Gallery(self.services.index.db)
        self.thumbs = Thumbnails(self.services.archive.root)

    @property
    def root(self) -> Path:
        return self.services.archive.root

    @staticmethod
    def in_object_store(row: dict[str, Any]) -> bool:
        """Whether a batch's files live in the S3 archive rather than a local folder."""
        return is_remote(row.get("folder"))

    async def remote_info(self, row: dict[str, Any]) -> dict[str, Any]:
        """info.json of an S3 batch (from the local cache when this machine has one)."""
        try:
            data = await self.services.archive.read_file(row["folder"], "info.json")
            info = json.loads(data)
        except FileNotFoundError:
            info = None
        except ValueError:
            info = None
        except Exception as exc:
            raise store_down() from exc
        if not isinstance(info, dict) or not info:
            raise not_found("That batch's files are no longer in the archive.")
        return info

    async def remote_file(self, row: dict[str, Any], name: str) -> bytes:
        """One file of an S3 batch, streamed through the app (no presigned URLs: the bucket
        stays private and the app's checks and headers hold for every file)."""
        try:
            return await self.services.archive.read_file(row["folder"], name)
        except FileNotFoundError:
            raise not_found("There is no such file in this batch.") from None
        except Exception as exc:
            raise store_down() from exc

    def page(self, request: web.Request, name: str, *, status: int = 200, **values: Any):
        """A rendered template, with the visitor, its CSRF token and sign-in state."""
        visitor: Visitor = request[VISITOR]
        html = self.env.get_template(name).render(
            visitor=visitor,
            csrf=self.auth.csrf_token(visitor),
            token_set=self.auth.token is not None,
            path=request.path,
            **values,
        )
        return web.Response(text=html, status=status, content_type="text/html")

    def keep_session(self, request: web.Request, response: web.StreamResponse) -> None:
        set_session_cookie(response, request, request[VISITOR])

    async def form(self, request: web.Request) -> dict[str, str]:
        """The posted form of a state-changing request, once its CSRF token checks out."""
        if request.content_length is not None and request.content_length > MAX_FORM:
            raise forbidden("That form is too large.")
        data = await request.post()
        offered = request.headers.get(CSRF_HEADER) or data.get(CSRF_FIELD)
        if not self.auth.csrf_ok(request[VISITOR], offered if isinstance(offered, str) else None):
            raise forbidden(
                "This form has expired or did not come from this site; reload the page and "
                "try again."
            )
        return {key: value for key, value in data.items() if isinstance(value, str)}

    def moderator(self, request: web.Request) -> Visitor:
        visitor: Visitor = request[VISITOR]
        if not visitor.moderator:
            raise forbidden("Only a signed-in moderator can do that; sign in on /login.")
        return visitor
