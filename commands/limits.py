"""Who may use the bot, and how many images a user may ask for per UTC day (SPEC §7)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from imagebot.providers.base import UsageError

if TYPE_CHECKING:
    from imagebot.commands.config import CommandConfig
    from imagebot.commands.invocation import Invocation
    from imagebot.commands.ports import JobQueue


class NotAllowed(UsageError):
    """The user may not do this here (allow-lists, quota, moderators only)."""


def check_allowed(config: CommandConfig, invocation: Invocation) -> None:
    """Allow-lists: who (listed user or role) and where (listed chat). Empty lists allow all."""
    requester = invocation.requester
    if config.allowed_chats and str(requester.chat_id) not in config.allowed_chats:
        raise NotAllowed("this bot is not enabled in this chat; ask a moderator to allow it")
    if config.allowed_users or config.allowed_roles:
        user_ok = str(requester.user_id) in config.allowed_users
        role_ok = any(str(role) in config.allowed_roles for role in invocation.role_ids)
        if not (user_ok or role_ok):
            raise NotAllowed(
                "you are not on this bot's list of allowed users or roles; "
                "ask a moderator to add you"
            )


# One member's flood must not stall a group: beyond this many requests of theirs in the queue
# (running or waiting), a new one is refused until one finishes. Others keep their turn.
MAX_QUEUED_PER_USER = 3


def check_queued(queue: JobQueue, invocation: Invocation, pending: int = 0) -> None:
    """Refuse a request from a user who already has MAX_QUEUED_PER_USER in the queue."""
    queued = len(queue.places(invocation.requester)) + pending
    if queued >= MAX_QUEUED_PER_USER:
        raise NotAllowed(
            f"you already have {queued} requests in the queue (at most "
            f"{MAX_QUEUED_PER_USER}); wait for one to finish, or /cancel them"
        )


MODERATORS = "Discord: Manage Server or Manage Messages; Telegram: chat administrators"


def check_moderator(invocation: Invocation, command: str) -> None:
    if not invocation.is_moderator:
        raise NotAllowed(f"/{command} is for moderators only ({MODERATORS})")


def day_start(now: datetime) -> datetime:
    """Midnight UTC of `now`'s day: when the quota was last reset."""
    now = now.astimezone(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def _until(moment: datetime, now: datetime) -> str:
    minutes = max(1, int((moment - now).total_seconds() // 60))
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def check_quota(
    config: CommandConfig,
    queue: JobQueue,
    invocation: Invocation,
    count: int,
    now: datetime,
    pending: int = 0,
    quota: int | None = None,
) -> None:
    """Refuse when `count` more images would pass the user's daily quota (0 = no limit).

    `pending` are images of the user's requests acknowledged but not yet in the queue; `quota`
    is the chat's own (tighter) quota when it has set one.
    """
    quota = config.daily_quota if quota is None else quota
    if quota <= 0:
        return
    requester = invocation.requester
    start = day_start(now)
    used = queue.images_used(requester, start) + pending
    left = max(0, quota - used)
    if count <= left:
        return
    reset = start + timedelta(days=1)
    when = f"at 00:00 UTC (in {_until(reset, now.astimezone(UTC))})"
    if left == 0:
        raise NotAllowed(f"you have used all {quota} images of your daily quota; it resets {when}")
    raise NotAllowed(
        f"that is {count} images but only {left} of your daily {quota} are left; "
        f"ask for {left} or fewer, or wait until the quota resets {when}"
    )
