"""One GPU, one request per batch: how a pool's renderers split a call's seeds into batches.

A WebUI or ComfyUI server renders n images as one batched request in about 1 + 0.4 (n - 1)
single-image times (providers.budget.BATCH_FACTOR), but n separate requests queue on its GPU and
cost n. So a call is cut into one batch per healthy server (one image per request when there are
at least as many servers as images), and each batch goes to the pool as one request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from imagebot.providers.base import ProviderError, RenderedImage

MAX_BATCH = 10  # a chat message holds 10 images; also what a consumer GPU's memory allows at 512²


class PartialRender(ProviderError):
    """Some batches of a call rendered and others failed: the good images, and why the rest did not.

    `kind` is the failure's, so a caller that only knows ProviderError reports it as before; a
    caller that knows this class keeps `images` (in seed order, the failed ones missing).
    """

    def __init__(self, error: ProviderError, images: Sequence[RenderedImage], missing: int):
        super().__init__(error.provider, error.message, retry_after=error.retry_after)
        self.kind = error.kind  # type: ignore[misc]
        self.error = error
        self.images = list(images)
        self.missing = missing


def split_even(seeds: Sequence[int], parts: int) -> list[list[int]]:
    """`seeds` cut into `parts` contiguous groups whose sizes differ by at most one."""
    parts = max(1, min(parts, len(seeds)))
    size, extra = divmod(len(seeds), parts)
    groups, start = [], 0
    for index in range(parts):
        end = start + size + (1 if index < extra else 0)
        groups.append(list(seeds[start:end]))
        start = end
    return [group for group in groups if group]


def consecutive_runs(seeds: Sequence[int], *, limit: int = MAX_BATCH) -> list[list[int]]:
    """Runs a batch can render exactly: seed, seed+1, ... (or all random, -1), at most `limit`."""
    runs: list[list[int]] = []
    for seed in seeds:
        last = runs[-1] if runs else None
        follows = last is not None and (
            (seed == -1 and last[-1] == -1)
            or (seed >= 0 and last[-1] >= 0 and seed == last[-1] + 1)
        )
        if follows and last is not None and len(last) < limit:
            last.append(seed)
        else:
            runs.append([seed])
    return runs


def plan_batches(seeds: Sequence[int], servers: int, *, limit: int = MAX_BATCH) -> list[list[int]]:
    """The batched requests for `seeds` on `servers` healthy servers, in seed order."""
    return [
        run for group in split_even(seeds, servers) for run in consecutive_runs(group, limit=limit)
    ]


async def render_batches(
    batches: Sequence[Sequence[int]],
    render_one: Callable[[int, Sequence[int]], Awaitable[list[RenderedImage]]],
) -> list[RenderedImage]:
    """Run every batch at once (`render_one(index, seeds)`); all images in order, or
    PartialRender / the first error."""
    results = await asyncio.gather(
        *(render_one(index, batch) for index, batch in enumerate(batches)),
        return_exceptions=True,
    )
    images: list[RenderedImage] = []
    errors: list[ProviderError] = []
    missing = 0
    for batch, result in zip(batches, results, strict=True):
        if isinstance(result, ProviderError):
            errors.append(result)
            missing += len(batch)
        elif isinstance(result, BaseException):
            raise result
        else:
            images.extend(result)
    if errors and images:
        raise PartialRender(errors[0], images, missing)
    if errors:
        raise errors[0]
    return images
