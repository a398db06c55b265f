"""The Discord reply port: how a command's answer becomes interaction responses and messages.

Live requests answer through the interaction (defer, edit the original, followups). A job
resumed after a restart rebuilds the port from its stored `reply` address: the followup
webhook while the 15-minute interaction token lasts, then a channel message mentioning the
user. Failed posts raise, so the runtime records the job as not answered.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import discord

from imagebot.bot.chat_progress import TrailingEdits
from imagebot.bot.discord.uploads import fit_uploads

if TYPE_CHECKING:
    from imagebot.commands.ports import BatchPost

log = logging.getLogger("imagebot.discord")
MiB = 1024 * 1024
DEFAULT_UPLOAD_LIMIT = 10 * MiB
TOKEN_LIFETIME = 15 * 60.0
TOKEN_MARGIN = 30.0  # a post that starts this close to expiry goes to the channel instead
PROGRESS_EVERY = 1.5
CONTENT_MAX, TITLE_MAX, DESCRIPTION_MAX, FOOTER_MAX, EMBED_MAX = 2000, 256, 4096, 2048, 6000
EXPIRED_CODES = {50027, 10015}  # Invalid Webhook Token, Unknown Webhook


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def embed_parts(post: BatchPost) -> tuple[str, str, str]:
    """(title, description, footer) of a batch's embed, inside Discord's embed limits."""
    title = _cut(post.title or "Untitled", TITLE_MAX)
    footer = _cut(" · ".join(p for p in (post.provider, post.model) if p), FOOTER_MAX)
    tags = " ".join(f"#{tag.replace(' ', '_')}" for tag in post.tags)
    extra = [line for line in (post.note, *post.errors) if line]
    tail = "\n\n".join(part for part in (tags, "\n".join(extra)) if part)
    room = min(DESCRIPTION_MAX, EMBED_MAX - len(title) - len(footer))
    if tail:
        tail = _cut(tail, room // 2)  # tags and notes never crowd out the description
        body = _cut(post.description, max(0, room - len(tail) - 2))
        description = f"{body}\n\n{tail}" if body else tail
    else:
        description = _cut(post.description, room)
    return title, _cut(description, room), footer


def build_embed(post: BatchPost) -> discord.Embed:
    """The embed under a batch: title, description with tags and notes, provider/model footer."""
    title, description, footer = embed_parts(post)
    embed = discord.Embed(title=title, description=description or None, colour=0x5865F2)
    if footer:
        embed.set_footer(text=footer)
    return embed


def split_text(text: str, limit: int = CONTENT_MAX) -> list[str]:
    """Message-sized pieces of a long text, split at line ends where possible."""
    pieces: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        cut = cut if cut > 0 else limit
        pieces.append(text[:cut])
        text = text[cut:].lstrip("\n")
    return [*pieces, text] if text or not pieces else pieces


class DiscordPort:
    """ReplyPort over one interaction, or over a stored reply address after a restart."""

    def __init__(
        self,
        client: discord.Client,
        reply: dict[str, Any],
        interaction: discord.Interaction | None = None,
        *,
        view_factory: Callable[[BatchPost], discord.ui.View] | None = None,
        upload_limit: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.reply = reply
        self.interaction = interaction
        self.view_factory = view_factory
        self.upload_limit = upload_limit or DEFAULT_UPLOAD_LIMIT
        self._edits = TrailingEdits(self._edit_original, PROGRESS_EVERY, clock=clock)
        self._edited_original = False
        self._deferred = interaction is None  # a stored address was acknowledged long ago

    # ------------------------------------------------------------ plumbing

    @property
    def _responded(self) -> bool:
        if self.interaction is not None:
            return self.interaction.response.is_done()
        return self._deferred

    def _token_alive(self) -> bool:
        if self.reply.get("scheduled"):  # a daily post is a new message, never a followup
            return False
        expires = float(self.reply.get("expires_at") or 0)
        return time.time() < expires - TOKEN_MARGIN

    def _webhook(self) -> discord.Webhook:
        if self.interaction is not None:
            return self.interaction.followup
        return discord.Webhook.partial(
            int(self.reply["application_id"]), str(self.reply["token"]), client=self.client
        )

    async def _channel(self) -> discord.abc.Messageable:
        channel_id = int(self.reply["channel_id"])
        channel = self.client.get_channel(channel_id) or await self.client.fetch_channel(channel_id)
        return channel  # type: ignore[return-value]

    def _mention(self) -> str:
        user = None if self.reply.get("scheduled") else self.reply.get("user_id")
        return f"<@{user}>" if user else ""

    async def _send(self, *, private: bool = False, **kwargs: Any) -> None:
        """One message: the interaction response, a followup, or a channel message."""
        self._edits.cancel()  # a late progress edit must not follow the answer
        if not self._responded and self.interaction is not None:
            await self.interaction.response.send_message(ephemeral=private, **kwargs)
            return
        if self._token_alive():
            try:
                await self._webhook().send(ephemeral=private, wait=True, **kwargs)
                return
            except discord.HTTPException as exc:
                if exc.code not in EXPIRED_CODES:
                    raise
                log.info("interaction token expired; answering in the channel instead")
        mention = self._mention()
        content = kwargs.pop("content", None) or ""
        if mention and mention not in content:
            content = f"{mention} {content}".strip()
            kwargs["allowed_mentions"] = only_pinging(self.reply.get("user_id"))
        channel = await self._channel()
        await channel.send(content=_cut(content, CONTENT_MAX) or None, **kwargs)

    # ------------------------------------------------------------ ReplyPort

    async def acknowledge(self, *, private: bool = False) -> None:
        """Defer with a "thinking…" message; later answers follow up on it."""
        if self._responded or self.interaction is None:
            return
        await self.interaction.response.defer(thinking=True, ephemeral=private)
        # "Thinking…" already says we are on it: the first edit waits a calm interval, which
        # also keeps a burst of requests from doubling its HTTP calls right after the defers.
        self._edits.mark_shown(None)

    async def progress(self, text: str, preview: bytes | None = None) -> None:
        """Edit the "thinking…" message at most once every PROGRESS_EVERY seconds."""
        if self.interaction is None or not self.interaction.response.is_done():
            return
        await self._edits.offer(_cut(text, CONTENT_MAX))

    async def _edit_original(self, text: str) -> None:
        if self.interaction is None:
            return
        await self.interaction.edit_original_response(content=text)
        self._edited_original = True

    async def text(self, text: str, *, private: bool = False) -> None:
        """A message (ephemeral when private); long texts go as several messages."""
        for piece in split_text(text):
            await self._send(content=piece, private=private)

    async def images(self, post: BatchPost) -> None:
        """One message: the images (fitted to the upload budget), the embed and the buttons."""
        uploads = await asyncio.to_thread(fit_uploads, list(post.images), self.upload_limit)
        files = [
            discord.File(io.BytesIO(data), filename=name, spoiler=post.spoiler)
            for name, data in uploads
        ]
        kwargs: dict[str, Any] = {"embed": build_embed(post), "files": files}
        if self.view_factory is not None and post.buttons:
            kwargs["view"] = self.view_factory(post)
        if post.mention and (self.interaction is None or not self._token_alive()):
            kwargs["content"] = f"<@{post.mention}>"
            kwargs["allowed_mentions"] = only_pinging(post.mention)
        await self._send(**kwargs)
        await self._clear_progress()

    async def file(self, name: str, data: bytes, text: str, *, private: bool = False) -> None:
        """A file (CSV) with a short text."""
        attachment = discord.File(io.BytesIO(data), filename=Path(name).name)
        await self._send(content=_cut(text, CONTENT_MAX), file=attachment, private=private)

    async def delete_post(self) -> None:
        """Delete the message whose button was clicked."""
        if self.interaction is None or self.interaction.message is None:
            return
        if not self.interaction.response.is_done():
            await self.interaction.response.defer()  # a silent update: nothing new is posted
        await self.interaction.message.delete()

    async def _clear_progress(self) -> None:
        # The progress line has served its purpose once the batch is posted.
        if not self._edited_original or self.interaction is None:
            return
        try:
            await self.interaction.delete_original_response()
        except discord.HTTPException:
            log.debug("could not delete the progress message", exc_info=True)
        self._edited_original = False


def only_pinging(user_id: Any) -> discord.AllowedMentions:
    """Allowed mentions for a message that pings its requester and nobody else (the client's
    default, set in the adapter, pings nobody: user and LLM text may hold @everyone)."""
    return discord.AllowedMentions(
        everyone=False, roles=False, replied_user=False, users=[discord.Object(int(user_id))]
    )


def upload_limit_of(interaction: discord.Interaction) -> int:
    """The upload limit Discord states for this interaction, else the guild's (10 MiB base)."""
    stated = getattr(interaction, "filesize_limit", None)
    if stated:
        return int(stated)
    guild = interaction.guild
    limit = getattr(guild, "filesize_limit", None) if guild is not None else None
    return int(limit or DEFAULT_UPLOAD_LIMIT)
