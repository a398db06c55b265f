"""The shapes of the offline renderer's dishes: a bowl of soup, a cake, a loaf of bread.

Same contract as motif_shapes: paint the silhouette on the mask, return its colour and a
function that adds the details (broth and steam, icing and a candle, scoring) on top.
"""

from __future__ import annotations

import math
import random

from PIL import Image, ImageDraw

from imagebot.providers.local.canvas import glow
from imagebot.providers.local.style import Scene

Draw = ImageDraw.ImageDraw


def _box(x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float]:
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)


def _soup(d: Draw, x: float, y: float, s: float, f: int, rng: random.Random):  # type: ignore[no-untyped-def]
    d.chord(_box(x - s, y - s * 0.9, x + s, y + s * 0.2), 0, 180, fill=255)  # bowl
    d.rectangle(_box(x - s * 0.3, y + s * 0.15, x + s * 0.3, y + s * 0.28), fill=255)  # foot

    def broth(img: Image.Image, scene: Scene) -> None:
        dd = ImageDraw.Draw(img)
        dd.ellipse(_box(x - s * 0.95, y - s * 0.5, x + s * 0.95, y - s * 0.25), fill=(196, 128, 60))
        for k in range(3):  # rising steam
            sx = x + (k - 1) * s * 0.35
            path = [
                (sx + math.sin(j * 1.3 + k) * s * 0.08, y - s * (0.6 + j * 0.12)) for j in range(8)
            ]
            dd.line(path, fill=(236, 232, 226), width=max(1, int(s * 0.04)))

    return (226, 222, 214), broth


def _cake(d: Draw, x: float, y: float, s: float, f: int, rng: random.Random):  # type: ignore[no-untyped-def]
    d.rectangle(_box(x - s * 0.8, y - s * 0.9, x + s * 0.8, y), fill=255)
    d.ellipse(_box(x - s * 0.8, y - s * 1.05, x + s * 0.8, y - s * 0.75), fill=255)

    def icing(img: Image.Image, scene: Scene) -> None:
        dd = ImageDraw.Draw(img)
        dd.ellipse(_box(x - s * 0.8, y - s * 1.05, x + s * 0.8, y - s * 0.75), fill=(250, 240, 236))
        dd.rectangle(_box(x - s * 0.8, y - s * 0.5, x + s * 0.8, y - s * 0.4), fill=(250, 240, 236))
        dd.rectangle(
            _box(x - s * 0.04, y - s * 1.35, x + s * 0.04, y - s * 0.95), fill=(240, 220, 120)
        )
        glow(img, (x, y - s * 1.4), s * 0.2, (255, 200, 90), 1.0)
        for k in range(5):
            bx = x + (k - 2) * s * 0.3
            dd.ellipse(
                _box(bx - s * 0.08, y - s * 1.0, bx + s * 0.08, y - s * 0.86), fill=(200, 30, 50)
            )

    return (150, 86, 52), icing


def _bread(d: Draw, x: float, y: float, s: float, f: int, rng: random.Random):  # type: ignore[no-untyped-def]
    d.rounded_rectangle(_box(x - s * 1.1, y - s * 0.7, x + s * 1.1, y), s * 0.45, fill=255)

    def scores(img: Image.Image, scene: Scene) -> None:
        dd = ImageDraw.Draw(img)
        for k in range(4):
            sx = x + (k - 1.5) * s * 0.45
            dd.line(
                (sx - s * 0.15, y - s * 0.5, sx + s * 0.15, y - s * 0.6),
                fill=(238, 214, 170),
                width=max(1, int(s * 0.07)),
            )

    return (176, 108, 48), scores


DISH_PAINTERS = {"soup": _soup, "cake": _cake, "bread": _bread}
