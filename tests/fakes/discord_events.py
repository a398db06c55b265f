"""INTERACTION_CREATE payloads as Discord builds them for a slash command or a component click.

A slash command must be registered (tree.sync) first, like on Discord: its id, guild scope and
option types come from the registration, and options are checked against it (unknown, missing
required, wrong type, outside choices/min/max raise ValueError: the Discord client would never
send such a command).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.fakes.discord_world import (
    FakeChannel,
    FakeGuild,
    FakeMember,
    FakeRole,
    FakeUser,
    StoredAttachment,
    StoredMessage,
)

if TYPE_CHECKING:
    from tests.fakes.discord_server import FakeDiscord

SUBCOMMAND, GROUP = 1, 2
STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE, MENTIONABLE, NUMBER, ATTACHMENT = range(3, 12)


def _base(
    fake: FakeDiscord,
    guild: FakeGuild,
    channel: FakeChannel,
    member: FakeMember,
    token: str,
    locale: str,
) -> dict[str, Any]:
    """The fields every guild interaction carries."""
    bot = guild.member(fake.bot_user.id)
    perms = guild.permissions_for(member, channel)
    return {
        "id": fake.ids.next(),
        "application_id": fake.application_id,
        "token": token,
        "version": 1,
        "guild_id": guild.id,
        "guild": {"id": guild.id, "locale": "en-US", "features": []},
        "guild_locale": "en-US",
        "channel_id": channel.id,
        "channel": {**channel.payload(), "permissions": str(perms)},
        "member": member.payload(perms),
        "app_permissions": str(guild.permissions_for(bot, channel) if bot else 0),
        "locale": locale,
        "entitlements": [],
        "authorizing_integration_owners": {"0": guild.id},
        "context": 0,
        "attachment_size_limit": fake.upload_limit,
    }


def build_slash_interaction(
    fake: FakeDiscord,
    guild: FakeGuild,
    channel: FakeChannel,
    member: FakeMember,
    name: str,
    options: dict[str, Any],
    token: str,
    locale: str,
) -> dict[str, Any]:
    """INTERACTION_CREATE type 2 for `/name` (words after the first name subcommands)."""
    root, *subs = name.split()
    command = next((c for c in fake.commands_for(guild.id) if c["name"] == root), None)
    scoped = command is not None
    command = command or next((c for c in fake.commands_for() if c["name"] == root), None)
    if command is None:
        raise ValueError(f"/{root} is not registered globally or in guild {guild.id}; sync first")
    resolved: dict[str, dict[str, Any]] = {}
    definition: dict[str, Any] = command
    chain: list[dict[str, Any]] = []
    for sub in subs:
        found = next((o for o in definition.get("options", []) if o["name"] == sub), None)
        if found is None or found.get("type") not in (SUBCOMMAND, GROUP):
            raise ValueError(f"/{root} has no subcommand {sub!r}")
        chain.append({"name": sub, "type": found["type"]})
        definition = found
    leaf = _options(fake, guild, channel, definition, options, resolved)
    for link in reversed(chain):
        link["options"] = leaf
        leaf = [link]
    data: dict[str, Any] = {"id": command["id"], "name": root, "type": 1, "options": leaf}
    if scoped:
        data["guild_id"] = guild.id
    if resolved:
        data["resolved"] = resolved
    payload = _base(fake, guild, channel, member, token, locale)
    payload.update(type=2, data=data)
    return payload


def _options(
    fake: FakeDiscord,
    guild: FakeGuild,
    channel: FakeChannel,
    definition: dict[str, Any],
    given: dict[str, Any],
    resolved: dict[str, dict[str, Any]],
) -> list[dict[str, Any]]:
    declared = {o["name"]: o for o in definition.get("options", [])}
    unknown = set(given) - set(declared)
    if unknown:
        raise ValueError(f"unknown options {sorted(unknown)}; declared: {sorted(declared)}")
    out = []
    for opt_name, spec in declared.items():
        if opt_name not in given:
            if spec.get("required"):
                raise ValueError(f"option {opt_name!r} is required")
            continue
        kind = spec["type"]
        value = _value(fake, guild, channel, kind, given[opt_name], resolved)
        choices = [c["value"] for c in spec.get("choices") or []]
        if choices and value not in choices:
            raise ValueError(f"option {opt_name!r}: {value!r} is not one of {choices}")
        low, high = spec.get("min_value"), spec.get("max_value")
        if kind in (INTEGER, NUMBER) and (
            (low is not None and value < low) or (high is not None and value > high)
        ):
            raise ValueError(f"option {opt_name!r}: {value} outside {low}..{high}")
        if kind == STRING and len(value) > int(spec.get("max_length", 6000)):
            raise ValueError(f"option {opt_name!r} longer than {spec['max_length']}")
        out.append({"name": opt_name, "type": kind, "value": value})
    return out


def _value(
    fake: FakeDiscord,
    guild: FakeGuild,
    channel: FakeChannel,
    kind: int,
    value: Any,
    resolved: dict[str, dict[str, Any]],
) -> Any:
    """The option's wire value, adding users/members/channels/roles/attachments to resolved."""
    if kind == STRING and isinstance(value, str):
        return value
    if kind == INTEGER and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == NUMBER and isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if kind == BOOLEAN and isinstance(value, bool):
        return value
    if kind in (USER, MENTIONABLE) and isinstance(value, FakeMember | FakeUser):
        member = value if isinstance(value, FakeMember) else guild.member(value.id)
        user = value.user if isinstance(value, FakeMember) else value
        resolved.setdefault("users", {})[user.id] = user.payload()
        if member is not None:
            data = member.payload(guild.permissions_for(member, channel))
            data.pop("user")
            resolved.setdefault("members", {})[user.id] = data
        return user.id
    if kind in (ROLE, MENTIONABLE) and isinstance(value, FakeRole):
        resolved.setdefault("roles", {})[value.id] = value.payload()
        return value.id
    if kind == CHANNEL and isinstance(value, FakeChannel):
        data = {k: value.payload()[k] for k in ("id", "name", "type", "parent_id")}
        resolved.setdefault("channels", {})[value.id] = {**data, "permissions": "0"}
        return value.id
    if kind == ATTACHMENT and isinstance(value, tuple | StoredAttachment):
        if isinstance(value, tuple):
            filename, data_bytes, *rest = value
            value = fake.rest.store_attachment(
                channel.id, filename, data_bytes, rest[0] if rest else "application/octet-stream"
            )
        resolved.setdefault("attachments", {})[value.id] = value.payload()
        return value.id
    raise ValueError(f"value {value!r} does not fit option type {kind}")


def build_component_interaction(
    fake: FakeDiscord,
    guild: FakeGuild,
    channel: FakeChannel,
    member: FakeMember,
    message: StoredMessage,
    custom_id: str,
    values: list[str] | None,
    token: str,
) -> dict[str, Any]:
    """INTERACTION_CREATE type 3 for a click on one of the message's components."""
    if message.deleted:
        raise ValueError(f"message {message.id} was deleted")
    component = message.component(custom_id)
    if component is None:
        raise ValueError(
            f"message {message.id} has no component {custom_id!r}: {message.custom_ids}"
        )
    if component.get("disabled"):
        raise ValueError(f"component {custom_id!r} is disabled")
    data: dict[str, Any] = {"custom_id": custom_id, "component_type": component["type"]}
    if component["type"] != 2:
        data["values"] = list(values or [])
    payload = _base(fake, guild, channel, member, token, "en-US")
    payload.update(type=3, data=data, message=message.payload())
    return payload
