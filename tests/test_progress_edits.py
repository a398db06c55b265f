"""Progress edits at a calm rate: what a user sees change in the progress message."""

from __future__ import annotations

from imagebot.bot.chat_progress import TrailingEdits


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def edits_on(clock: Clock, fail: bool = False) -> tuple[TrailingEdits, list[str]]:
    shown: list[str] = []

    async def show(text: str) -> None:
        if fail:
            raise RuntimeError("the chat refused the edit")
        shown.append(text)

    return TrailingEdits(show, 2.0, clock=clock, sleep=clock.sleep), shown


async def test_a_text_that_comes_too_soon_waits_and_the_latest_wins() -> None:
    clock = Clock()
    edits, shown = edits_on(clock)
    edits.mark_shown("Working on it…")
    await edits.offer("Queued: number 3")
    await edits.offer("Queued: number 2")
    assert shown == []
    await edits.settled()
    assert shown == ["Queued: number 2"] and clock.now == 102.0


async def test_the_same_text_is_never_shown_twice_and_cancel_drops_a_kept_one() -> None:
    clock = Clock()
    edits, shown = edits_on(clock)
    await edits.offer("Rendering 1/4 …")
    await edits.offer("Rendering 1/4 …")
    clock.now += 5
    await edits.offer("Rendering 1/4 …")
    await edits.offer("Rendering 2/4 …")
    await edits.offer("Rendering 3/4 …")  # too soon: kept
    edits.cancel()  # the answer is going out
    await edits.settled()
    assert shown == ["Rendering 1/4 …", "Rendering 2/4 …"]


async def test_a_failed_edit_never_fails_the_request() -> None:
    edits, shown = edits_on(Clock(), fail=True)
    await edits.offer("Rendering 1/4 …")
    assert shown == []
