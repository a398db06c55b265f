"""The buttons under a posted batch: re-roll, the same prompt again, delete."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from imagebot.commands.chat import upscale
from imagebot.commands.limits import NotAllowed
from imagebot.commands.ports import ButtonId
from imagebot.providers.base import UsageError

if TYPE_CHECKING:
    from imagebot.commands.chat import ChatCommands
    from imagebot.commands.invocation import Invocation
    from imagebot.commands.ports import ReplyPort


async def press(chat: ChatCommands, invocation: Invocation, port: ReplyPort) -> None:
    """One press: the button's id is untrusted, so it is unpacked and its batch looked up."""
    button = ButtonId.unpack(str(invocation.args.get("custom_id") or ""))
    posted = invocation.args.get("posted_batch")  # what the message shows, when the adapter knows
    if posted and posted != button.batch_id:
        raise UsageError("that button does not belong to this post; it does nothing")
    row = chat.services.index.get_batch(button.batch_id)
    if row is None:
        raise UsageError("that batch is no longer in the archive")
    if button.action == "delete":
        await delete(chat, invocation, port, row)
    elif button.action == "again":
        await chat.generation.again(invocation, port, row)
    elif button.action == "reroll":
        await chat.generation.reroll(invocation, port, row)
    elif button.action == "upscale" and button.image is not None:
        await upscale.request(chat, invocation, port, row, button.image)
    else:
        raise UsageError(f"that button ({button.action}) is not available yet")


async def delete(
    chat: ChatCommands, invocation: Invocation, port: ReplyPort, row: dict[str, Any]
) -> None:
    """Delete the post (the requester or a moderator); the archive keeps the batch."""
    requester = invocation.requester
    own = row.get("platform") == requester.platform and row.get("user_id") == str(requester.user_id)
    if not (own or invocation.is_moderator):
        raise NotAllowed("only the person who asked for this batch or a moderator can delete it")
    await port.delete_post()
    chat.services.index.mark_deleted(row["id"], requester.user_id)
