"""The Discord adapter: slash commands and buttons in, platform-neutral invocations out.

It translates and nothing more: every rule lives in commands/ (ChatCommands.handle). The
bot asks for the guilds intent only (interactions need no intent; message events would only
cost CPU under load), syncs its commands when their payload changed, and carries
batch buttons as dynamic items (commands.ports.ButtonId) so they work after a restart.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.ext import commands as bot_commands

from imagebot.bot.app import StartupError
from imagebot.bot.discord.port import TOKEN_LIFETIME, DiscordPort, upload_limit_of
from imagebot.commands.invocation import Invocation
from imagebot.commands.ports import ButtonId
from imagebot.commands.requester import Requester
from imagebot.providers.base import ConfigError, UsageError

if TYPE_CHECKING:
    from imagebot.bot.app import BotContext
    from imagebot.bot.settings import Settings
    from imagebot.commands.chat import ChatCommands
    from imagebot.commands.ports import BatchPost
    from imagebot.commands.services import Services

log = logging.getLogger("imagebot.discord")
DEFAULT_API_BASE = "https://discord.com/api/v10"
BUTTON_STYLES = {"reroll": discord.ButtonStyle.primary, "delete": discord.ButtonStyle.danger}


class BatchButton(discord.ui.DynamicItem[discord.ui.Button], template=ButtonId.PATTERN):
    """Any batch button, past or present: one handler, found by its custom_id."""

    def __init__(self, target: ButtonId, label: str = "") -> None:
        style = BUTTON_STYLES.get(target.action, discord.ButtonStyle.secondary)
        button = discord.ui.Button(
            label=label or target.action, style=style, custom_id=target.pack()
        )
        super().__init__(button)

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: Any
    ) -> BatchButton:
        return cls(ButtonId.unpack(match.string), item.label or "")

    async def callback(self, interaction: discord.Interaction) -> None:
        client = interaction.client
        assert isinstance(client, ImageBot)
        posted = posted_batch(interaction.message)
        args = {"custom_id": self.item.custom_id, "posted_batch": posted}
        await client.run_command(interaction, "button", args)


def posted_batch(message: discord.Message | None) -> str | None:
    """The batch a message's own buttons are for (a pressed id must be one of them)."""
    for row in getattr(message, "components", None) or []:
        for child in getattr(row, "children", []):
            try:
                return ButtonId.unpack(getattr(child, "custom_id", None) or "").batch_id
            except UsageError:
                continue
    return None


def batch_view(post: BatchPost) -> discord.ui.View:
    """The buttons under a batch: a persistent view of dynamic items."""
    view = discord.ui.View(timeout=None)
    for number, row in enumerate(post.buttons[:5]):
        for button in row[:5]:
            item = BatchButton(button.target, button.label)
            item.item.row = number
            view.add_item(item)
    return view


def build_invocation(
    interaction: discord.Interaction, command: str, args: dict[str, Any]
) -> Invocation:
    """The platform-neutral invocation of one interaction."""
    user = interaction.user
    perms = interaction.permissions  # the member's permissions in this channel
    roles = getattr(user, "roles", None) or []
    now = time.time()
    return Invocation(
        requester=Requester(
            platform="discord",
            user_id=str(user.id),
            user_name=user.display_name,
            chat_id=str(interaction.channel_id) if interaction.channel_id else None,
            guild_id=str(interaction.guild_id) if interaction.guild_id else None,
        ),
        command=command,
        args={key: value for key, value in args.items() if value is not None},
        is_moderator=bool(perms.manage_guild or perms.manage_messages),
        role_ids=tuple(str(role.id) for role in roles if not role.is_default()),
        reply={
            "application_id": str(interaction.application_id),
            "token": interaction.token,
            "expires_at": now + TOKEN_LIFETIME,
            "channel_id": str(interaction.channel_id) if interaction.channel_id else None,
            "guild_id": str(interaction.guild_id) if interaction.guild_id else None,
            "user_id": str(user.id),
        },
    )


class ImageBot(bot_commands.Bot):
    """imagebot on Discord: guilds intent, one aiohttp session, app commands, dynamic buttons."""

    def __init__(
        self, settings: Settings, services: Services, chat: ChatCommands, **options: Any
    ) -> None:
        # Slash commands and buttons arrive as interactions whatever the intents; the message
        # intents would echo every defer, edit and post back to the bot as gateway events.
        options.setdefault("intents", discord.Intents(guilds=True))
        # Every message pings nobody unless it says whom (bot/discord/port.only_pinging).
        options.setdefault("allowed_mentions", discord.AllowedMentions.none())
        super().__init__(command_prefix=bot_commands.when_mentioned, help_command=None, **options)
        self.services = services
        self.chat = chat
        self.settings = settings
        self.synced: bool | None = None  # True when setup_hook had to sync, False when skipped

    # ------------------------------------------------------------ start-up

    async def setup_hook(self) -> None:
        self.add_dynamic_items(BatchButton)
        from imagebot.bot.discord.slash import add_commands

        add_commands(self)
        self.tree.on_error = self._on_tree_error  # type: ignore[method-assign]
        await self.sync_if_changed()

    def _sync_file(self) -> Path:
        return Path(self.settings.db_path).parent / "discord_commands.sha256"

    def command_hash(self) -> str:
        """A hash of the command payloads and where they go; it changes when a sync is due."""
        payload = [command.to_dict(self.tree) for command in self.tree.get_commands()]
        scope = {"app": str(self.application_id), "guilds": list(self.settings.discord_guild_ids)}
        text = json.dumps([scope, payload], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    async def sync_if_changed(self) -> bool:
        """Sync the commands (to DISCORD_GUILD_IDS, else globally) only when they changed."""
        digest = self.command_hash()
        path = self._sync_file()
        try:
            if path.read_text(encoding="utf-8").strip() == digest:
                self.synced = False
                return False
        except OSError:
            pass
        if self.settings.discord_guild_ids:
            for guild_id in self.settings.discord_guild_ids:
                guild = discord.Object(id=int(guild_id))
                self.tree.copy_global_to(guild=guild)
                await self.tree.sync(guild=guild)
        else:
            await self.tree.sync()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(digest + "\n", encoding="utf-8")
        self.synced = True
        return True

    # ------------------------------------------------------------ interactions

    def port_from_reply(self, reply: dict[str, Any]) -> DiscordPort:
        """Rebuild a reply port from a job's stored address (after a restart)."""
        return DiscordPort(self, reply, view_factory=batch_view)

    async def run_command(
        self, interaction: discord.Interaction, command: str, args: dict[str, Any]
    ) -> None:
        """Hand one interaction to the chat commands with a port that answers on it."""
        invocation = build_invocation(interaction, command, args)
        port = DiscordPort(
            self,
            invocation.reply,
            interaction,
            view_factory=batch_view,
            upload_limit=upload_limit_of(interaction),
        )
        await self.chat.handle(invocation, port)

    async def _on_tree_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        log.error("slash command failed", exc_info=getattr(error, "original", error))


class ShardedImageBot(ImageBot, bot_commands.AutoShardedBot):
    """imagebot running some of the bot's shards (DISCORD_SHARDS=I-J/N): Discord sends this
    process the events of the guilds whose (guild_id >> 22) % N is one of its shards."""


def build_bot(ctx: BotContext, **bot_options: Any) -> ImageBot:
    """One client for every shard Discord picks (DISCORD_SHARDS unset), or shards I..J of N."""
    shards = ctx.settings.discord_shards
    if shards is None:
        return ImageBot(ctx.settings, ctx.services, ctx.chat, **bot_options)
    options = {"shard_ids": shards.ids, "shard_count": shards.count, **bot_options}
    return ShardedImageBot(ctx.settings, ctx.services, ctx.chat, **options)


class DiscordAdapter:
    """Runs the Discord bot on the shared loop (built by bot.app.run_bots)."""

    platform = "discord"

    def __init__(self, ctx: BotContext, **bot_options: Any) -> None:
        self.settings = ctx.settings
        self.bot = build_bot(ctx, **bot_options)
        self._task: asyncio.Task[None] | None = None
        ctx.runtime.register_platform("discord", self.bot.port_from_reply)

    async def login(self) -> None:
        """Log in over REST only: enough to post (`imagebot daily --once`)."""
        api_base = self.settings.discord_api_base.rstrip("/")
        discord.http.Route.BASE = api_base
        token = self.settings.discord_token
        assert token is not None
        try:
            await self.bot.login(token.reveal())
        except discord.LoginFailure:
            raise ConfigError(
                "DISCORD_TOKEN was refused by Discord (401 Unauthorized): copy the bot's token "
                "again from the Developer Portal (Bot > Reset Token)"
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise StartupError(f"cannot reach Discord at {api_base}: {exc}") from None

    async def start(self) -> None:
        """Log in (syncing commands if needed) and connect the gateway in the background."""
        await self.login()
        api_base = self.settings.discord_api_base.rstrip("/")
        if api_base != DEFAULT_API_BASE:
            # discord.Client never asks GET /gateway/bot itself; a proxy or test server must.
            _, url, _ = await self.bot.http.get_bot_gateway()
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)
        self._task = asyncio.create_task(self.bot.connect(), name="discord-gateway")

    async def wait_until_ready(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self.bot.wait_until_ready(), timeout)

    async def wait(self) -> None:
        """Until the gateway connection ends (closed, or a fatal error)."""
        if self._task is not None:
            await self._task

    async def stop(self) -> None:
        """Close the gateway and the HTTP session."""
        await self.bot.close()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, 10)
            except (TimeoutError, asyncio.CancelledError, discord.DiscordException):
                pass
