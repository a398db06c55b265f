"""Application command registration: GET/PUT/POST/PATCH/DELETE, global and per guild.

Bulk overwrite (PUT, what tree.sync sends) keeps a command's id when its name and type stay
the same, like Discord, and each sync is recorded in `fake.command_syncs`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.discord_limits import api_error, form_error, json_response, too_long
from tests.fakes.discord_records import RECORD

if TYPE_CHECKING:
    from tests.fakes.discord_server import FakeDiscord

NAME = re.compile(r"^[-_'\w]{1,32}$")
MAX_CHAT_COMMANDS = 100


def _check_text(path: list[str | int], value: Any, low: int, high: int) -> None:
    if not isinstance(value, str) or not low <= len(value) <= high:
        raise form_error(
            path, "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length."
        )


def _check_name(path: list[str | int], name: Any, chat_input: bool) -> None:
    _check_text(path, name, 1, 32)
    if chat_input and (not NAME.match(name) or name != name.lower()):
        raise form_error(path, "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")


def _check_options(path: list[str | int], options: list[dict[str, Any]]) -> None:
    if len(options) > 25:
        raise too_long([*path, "options"], 25)
    names: set[str] = set()
    for index, option in enumerate(options):
        where: list[str | int] = [*path, "options", index]
        _check_name([*where, "name"], option.get("name"), True)
        _check_text([*where, "description"], option.get("description"), 1, 100)
        if option["name"] in names:
            raise form_error(
                [*where, "name"],
                "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS",
                "Option names must be unique",
            )
        names.add(option["name"])
        if len(option.get("choices") or []) > 25:
            raise too_long([*where, "choices"], 25)
        _check_options(where, option.get("options") or [])


def validate_command(path: list[str | int], command: Any) -> None:
    """Raise DiscordError (400 Invalid Form Body) for a command Discord would refuse."""
    if not isinstance(command, dict):
        raise form_error(path, "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
    kind = command.get("type", 1)
    _check_name([*path, "name"], command.get("name"), kind == 1)
    if kind == 1:
        _check_text([*path, "description"], command.get("description"), 1, 100)
        _check_options(path, command.get("options") or [])


class CommandRoutes:
    """The /applications/{app}/... command routes."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake

    def add_routes(self, app: web.Application, prefix: str) -> None:
        base = prefix + "/applications/{app_id}"
        for scope in (base + "/commands", base + "/guilds/{guild_id}/commands"):
            app.router.add_get(scope, self.list_commands)
            app.router.add_put(scope, self.overwrite)
            app.router.add_post(scope, self.create)
            app.router.add_get(scope + "/{command_id}", self.get_command)
            app.router.add_patch(scope + "/{command_id}", self.edit)
            app.router.add_delete(scope + "/{command_id}", self.delete)

    def _scope(self, request: web.Request) -> tuple[str | None, list[dict[str, Any]]]:
        if request.match_info["app_id"] != self.fake.application_id:
            raise api_error(403, 50001, "Missing Access")
        guild_id = request.match_info.get("guild_id")
        if guild_id is None:
            return None, self.fake.global_commands
        if self.fake.find_guild(guild_id) is None:
            raise api_error(403, 50001, "Missing Access")
        return guild_id, self.fake.guild_commands.setdefault(guild_id, [])

    def _full(self, command: dict[str, Any], guild_id: str | None, old: dict | None) -> dict:
        kind = command.get("type", 1)
        full: dict[str, Any] = {
            "id": old["id"] if old else self.fake.ids.next(),
            "application_id": self.fake.application_id,
            "version": self.fake.ids.next(),
            "type": kind,
            "name": command["name"],
            "name_localizations": command.get("name_localizations"),
            "description": command.get("description", "") if kind == 1 else "",
            "description_localizations": command.get("description_localizations"),
            "options": command.get("options") or [],
            "default_member_permissions": command.get("default_member_permissions"),
            "dm_permission": command.get("dm_permission", True),
            "contexts": command.get("contexts"),
            "integration_types": command.get("integration_types") or [0],
            "nsfw": command.get("nsfw", False),
        }
        if guild_id is not None:
            full["guild_id"] = guild_id
        return full

    def _find(self, commands: list[dict[str, Any]], command_id: str) -> dict[str, Any]:
        found = next((c for c in commands if c["id"] == command_id), None)
        if found is None:
            raise api_error(404, 10063, "Unknown application command")
        return found

    async def _json(self, request: web.Request) -> Any:
        try:
            body = await request.json()
        except ValueError as exc:
            raise api_error(400, 50109, "The request body contains invalid JSON.") from exc
        request[RECORD].json = body
        return body

    async def list_commands(self, request: web.Request) -> web.Response:
        _, commands = self._scope(request)
        return json_response(commands)

    async def get_command(self, request: web.Request) -> web.Response:
        _, commands = self._scope(request)
        return json_response(self._find(commands, request.match_info["command_id"]))

    async def overwrite(self, request: web.Request) -> web.Response:
        guild_id, commands = self._scope(request)
        body = await self._json(request)
        if not isinstance(body, list):
            raise form_error([], "ARRAY_TYPE_CONVERT", "Could not interpret value as array.")
        if (
            sum(1 for c in body if isinstance(c, dict) and c.get("type", 1) == 1)
            > MAX_CHAT_COMMANDS
        ):
            raise too_long([], MAX_CHAT_COMMANDS)
        seen: set[tuple[int, str]] = set()
        for index, command in enumerate(body):
            validate_command([index], command)
            key = (command.get("type", 1), command["name"])
            if key in seen:
                raise form_error(
                    [index, "name"],
                    "APPLICATION_COMMANDS_DUPLICATE_NAME",
                    "Application command names must be unique",
                )
            seen.add(key)
        old = {(c["type"], c["name"]): c for c in commands}
        new = [self._full(c, guild_id, old.get((c.get("type", 1), c["name"]))) for c in body]
        commands[:] = new
        self.fake.command_syncs.append((guild_id, body))
        self.fake.notify()
        return json_response(new)

    async def create(self, request: web.Request) -> web.Response:
        guild_id, commands = self._scope(request)
        body = await self._json(request)
        validate_command([], body)
        key = (body.get("type", 1), body["name"])
        old = next((c for c in commands if (c["type"], c["name"]) == key), None)
        full = self._full(body, guild_id, old)
        if old is not None:
            commands[commands.index(old)] = full
        else:
            commands.append(full)
        self.fake.notify()
        return json_response(full, status=200 if old else 201)

    async def edit(self, request: web.Request) -> web.Response:
        guild_id, commands = self._scope(request)
        old = self._find(commands, request.match_info["command_id"])
        body = await self._json(request)
        merged = {**old, **body}
        validate_command([], merged)
        full = self._full(merged, guild_id, old)
        commands[commands.index(old)] = full
        self.fake.notify()
        return json_response(full)

    async def delete(self, request: web.Request) -> web.Response:
        _, commands = self._scope(request)
        commands.remove(self._find(commands, request.match_info["command_id"]))
        self.fake.notify()
        return web.Response(status=204)
