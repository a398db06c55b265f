"""The shapes of the offline renderer's motifs: each paints a silhouette mask and its details.

A painter gets the mask's ImageDraw, the motif's base point (x, ground y), its size, which way
it faces and the seed's random source; it returns the silhouette's colour and a function that
adds details (eyes, windows, steam) on top once the silhouette is painted.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from PIL import Image, ImageDraw

from imagebot.providers.local.canvas import glow, vgradient
from imagebot.providers.local.dish_shapes import DISH_PAINTERS
from imagebot.providers.local.style import RGB, Scene, adjust, mix

WHITE = (255, 255, 255)
Draw = ImageDraw.ImageDraw


def _box(x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float]:
    """A box whichever way the motif faces (a mirrored x0 may be right of x1)."""
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)


def _nothing(img: Image.Image, scene: Scene) -> None:
    return None


Painter = Callable[[Draw, float, float, float, int, random.Random], tuple[RGB, Callable]]


def _fox(d: Draw, x: float, y: float, s: float, f: int, rng: random.Random):  # type: ignore[no-untyped-def]
    d.ellipse(_box(x - s * 0.8, y - s * 0.75, x + s * 0.6, y - s * 0.2), fill=255)  # long body
    for lx in (-0.6, -0.35, 0.2, 0.45):  # thin legs
        d.rectangle(_box(x + f * s * lx, y - s * 0.35, x + f * s * (lx + 0.08), y), fill=255)
    hx = x + f * s * 0.75
    d.polygon(
        [
            (hx - f * s * 0.25, y - s * 0.8),
            (hx + f * s * 0.45, y - s * 0.6),
            (hx - f * s * 0.1, y - s * 0.45),
        ],
        fill=255,
    )  # pointed snout
    for ex in (-0.2, 0.05):  # tall pointed ears
        d.polygon(
            [
                (hx + f * s * ex, y - s * 0.8),
                (hx + f * s * (ex + 0.08), y - s * 1.1),
                (hx + f * s * (ex + 0.18), y - s * 0.78),
            ],
            fill=255,
        )
    tail = [
        (x - f * s * (0.7 + 0.5 * k / 6), y - s * (0.45 - 0.25 * math.sin(k / 2))) for k in range(7)
    ]
    d.line(tail, fill=255, width=int(s * 0.28), joint="curve")  # bushy tail

    def tip(img: Image.Image, scene: Scene) -> None:
        ex, ey = tail[-1]
        ImageDraw.Draw(img).ellipse(
            _box(ex - s * 0.12, ey - s * 0.12, ex + s * 0.12, ey + s * 0.12), fill=(245, 240, 230)
        )

    return (214, 104, 36), tip


def _hare(d: Draw, x: float, y: float, s: float, f: int, rng: random.Random):  # type: ignore[no-untyped-def]
    d.ellipse(_box(x - s * 0.55, y - s * 0.8, x + s * 0.45, y), fill=255)  # round crouched body
    hx, hy = x + f * s * 0.4, y - s * 0.85
    d.ellipse(_box(hx - s * 0.22, hy - s * 0.2, hx + s * 0.22, hy + s * 0.18), fill=255)
    for ex in (-0.1, 0.08):  # the long upright ears
        cx = hx + f * s * ex
        d.ellipse(_box(cx - s * 0.06, hy - s * 0.85, cx + s * 0.06, hy - s * 0.1), fill=255)
    return (150, 128, 104), _scut(x - f * s * 0.55, y - s * 0.35, s * 0.1)


def _scut(x: float, y: float, r: float):  # type: ignore[no-untyped-def]
    def draw(img: Image.Image, scene: Scene) -> None:
        ImageDraw.Draw(img).ellipse(_box(x - r, y - r, x + r, y + r), fill=(240, 236, 228))

    return draw


def _bird(d: Draw, x: float, y: float, s: float, f: int, rng: random.Random):  # type: ignore[no-untyped-def]
    by = y - s * 1.2
    d.line((x - s * 1.3, by + s * 0.5, x + s * 1.3, by + s * 0.42), fill=255, width=int(s * 0.07))
    d.ellipse(_box(x - s * 0.45, by - s * 0.35, x + s * 0.35, by + s * 0.45), fill=255)  # body
    hx = x + f * s * 0.3
    d.ellipse(_box(hx - s * 0.22, by - s * 0.6, hx + s * 0.22, by - s * 0.18), fill=255)  # head
    d.polygon(
        [
            (hx + f * s * 0.18, by - s * 0.45),
            (hx + f * s * 0.48, by - s * 0.38),
            (hx + f * s * 0.18, by - s * 0.3),
        ],
        fill=255,
    )  # beak
    d.polygon(
        [
            (x - f * s * 0.3, by + s * 0.1),
            (x - f * s * 0.95, by + s * 0.55),
            (x - f * s * 0.2, by + s * 0.35),
        ],
        fill=255,
    )
    return (70, 96, 150), _nothing


def _fish(d: Draw, x: float, y: float, s: float, f: int, rng: random.Random):  # type: ignore[no-untyped-def]
    d.ellipse(_box(x - s * 0.8, y - s * 0.35, x + s * 0.8, y + s * 0.35), fill=255)
    tx = x - f * s * 0.7
    d.polygon(
        [(tx, y), (tx - f * s * 0.55, y - s * 0.4), (tx - f * s * 0.55, y + s * 0.4)], fill=255
    )
    d.polygon(
        [
            (x - s * 0.2, y - s * 0.3),
            (x + f * s * 0.1, y - s * 0.6),
            (x + f * s * 0.3, y - s * 0.3),
        ],
        fill=255,
    )

    def eye(img: Image.Image, scene: Scene) -> None:
        ex = x + f * s * 0.5
        ImageDraw.Draw(img).ellipse(
            _box(ex - s * 0.07, y - s * 0.12, ex + s * 0.07, y + s * 0.02), fill=(20, 20, 24)
        )

    return (232, 132, 48), eye


def _quadruped(d: Draw, x: float, y: float, s: float, f: int, leg: float, neck: float) -> float:
    d.ellipse(_box(x - s * 0.8, y - s * (leg + 0.55), x + s * 0.7, y - s * leg), fill=255)  # barrel
    for lx in (-0.65, -0.45, 0.35, 0.55):
        d.rectangle(_box(x + f * s * lx, y - s * (leg + 0.1), x + f * s * (lx + 0.09), y), fill=255)
    nx = x + f * s * 0.55
    d.polygon(
        [
            (nx - f * s * 0.1, y - s * (leg + 0.4)),
            (nx + f * s * 0.2, y - s * (leg + neck)),
            (nx + f * s * 0.4, y - s * (leg + neck - 0.1)),
            (nx + f * s * 0.25, y - s * (leg + 0.2)),
        ],
        fill=255,
    )
    hx, hy = nx + f * s * 0.35, y - s * (leg + neck)
    d.polygon(
        [
            (hx - f * s * 0.1, hy - s * 0.1),
            (hx + f * s * 0.45, hy + s * 0.12),
            (hx + f * s * 0.4, hy + s * 0.28),
            (hx - f * s * 0.05, hy + s * 0.18),
        ],
        fill=255,
    )
    return hy


def _horse(d: Draw, x: float, y: float, s: float, f: int, rng: random.Random):  # type: ignore[no-untyped-def]
    hy = _quadruped(d, x, y, s, f, 0.75, 0.95)
    tail = [(x - f * s * (0.8 + 0.1 * k), y - s * (1.2 - 0.15 * k)) for k in range(6)]
    d.line(tail, fill=255, width=int(s * 0.12), joint="curve")
    d.polygon(
        [
            (x + f * s * 0.6, hy + s * 0.05),
            (x + f * s * 0.95, hy - s * 0.1),
            (x + f * s * 0.55, y - s * 1.2),
        ],
        fill=255,
    )  # mane
    return (96, 60, 38), _nothing


def _deer(d: Draw, x: float, y: float, s: float, f: int, rng: random.Random):  # type: ignore[no-untyped-def]
    hy = _quadruped(d, x, y, s * 0.9, f, 0.8, 0.9)
    hx = x + f * s * 0.85
    for side in (-1, 1):  # branching antlers
        base = (hx + side * s * 0.05, hy - s * 0.05)
        top = (hx + side * s * 0.3, hy - s * 0.6)
        d.line([base, top], fill=255, width=max(1, int(s * 0.05)))
        for k in (0.35, 0.65):
            px, py = base[0] + (top[0] - base[0]) * k, base[1] + (top[1] - base[1]) * k
            d.line(
                [(px, py), (px + side * s * 0.18, py - s * 0.15)],
                fill=255,
                width=max(1, int(s * 0.04)),
            )
    return (170, 120, 72), _nothing


def _house(d: Draw, x: float, y: float, s: float, f: int, rng: random.Random):  # type: ignore[no-untyped-def]
    boxes = []
    for k in range(rng.randint(1, 3)):
        bw, bh = s * rng.uniform(0.9, 1.4), s * rng.uniform(0.8, 1.3)
        bx = x + (k - 1) * s * 1.1
        d.rectangle(_box(bx - bw / 2, y - bh, bx + bw / 2, y), fill=255)
        d.polygon(
            [(bx - bw * 0.6, y - bh), (bx, y - bh - bw * 0.55), (bx + bw * 0.6, y - bh)], fill=255
        )
        boxes.append((bx, bw, bh))
    return (176, 150, 124), _windows(boxes, y, s)


def _windows(boxes, y: float, s: float):  # type: ignore[no-untyped-def]
    def draw(img: Image.Image, scene: Scene) -> None:
        d = ImageDraw.Draw(img)
        lit = mix(scene.accent, (255, 214, 130), 0.6)
        for bx, bw, bh in boxes:
            for row in range(max(1, int(bh / (s * 0.4)))):
                for col in (-1, 1):
                    wx, wy = bx + col * bw * 0.22, y - bh + s * 0.2 + row * s * 0.38
                    if wy + s * 0.2 < y:
                        d.rectangle(_box(wx - s * 0.08, wy, wx + s * 0.08, wy + s * 0.18), fill=lit)
            d.rectangle(_box(bx - s * 0.1, y - s * 0.3, bx + s * 0.1, y), fill=(60, 40, 30))

    return draw


def _tower(d: Draw, x: float, y: float, s: float, f: int, rng: random.Random):  # type: ignore[no-untyped-def]
    tw, th = s * 0.5, s * rng.uniform(2.2, 2.8)
    d.polygon(
        [(x - tw * 0.6, y), (x - tw * 0.45, y - th), (x + tw * 0.45, y - th), (x + tw * 0.6, y)],
        fill=255,
    )
    d.rectangle(_box(x - tw * 0.6, y - th - s * 0.3, x + tw * 0.6, y - th), fill=255)
    d.polygon(
        [(x - tw * 0.7, y - th - s * 0.3), (x, y - th - s * 0.9), (x + tw * 0.7, y - th - s * 0.3)],
        fill=255,
    )

    def light(img: Image.Image, scene: Scene) -> None:
        glow(img, (x, y - th - s * 0.15), s * 0.5, mix(scene.accent, (255, 230, 160), 0.6), 0.9)

    return (196, 188, 176), light


def _portal(d: Draw, x: float, y: float, s: float, f: int, rng: random.Random):  # type: ignore[no-untyped-def]
    ow, oh = s * 0.9, s * 2.0
    d.rectangle(_box(x - ow, y - oh, x + ow, y), fill=255)
    d.ellipse(_box(x - ow, y - oh - ow, x + ow, y - oh + ow), fill=255)
    iw = ow * 0.7

    def inside(img: Image.Image, scene: Scene) -> None:  # a doorway of light inside the stone
        hole = Image.new("L", img.size, 0)
        hd = ImageDraw.Draw(hole)
        hd.rectangle(_box(x - iw, y - oh, x + iw, y), fill=255)
        hd.ellipse(_box(x - iw, y - oh - iw, x + iw, y - oh + iw), fill=255)
        light = mix(scene.accent, (180, 230, 255), 0.5)
        img.paste(
            vgradient(img.size, [mix(light, WHITE, 0.6), light, adjust(light, 0.7)]), (0, 0), hole
        )
        glow(img, (x, y - oh * 0.6), s * 1.6, light, 0.6)

    return (110, 104, 100), inside


def _tree(d: Draw, x: float, y: float, s: float, f: int, rng: random.Random):  # type: ignore[no-untyped-def]
    d.rectangle(_box(x - s * 0.12, y - s * 1.5, x + s * 0.12, y), fill=255)
    for _ in range(7):
        bx, by = x + rng.uniform(-0.8, 0.8) * s, y - s * rng.uniform(1.5, 2.4)
        r = s * rng.uniform(0.4, 0.65)
        d.ellipse(_box(bx - r, by - r, bx + r, by + r), fill=255)
    return (58, 110, 52), _nothing


def _flower(d: Draw, x: float, y: float, s: float, f: int, rng: random.Random):  # type: ignore[no-untyped-def]
    heads = []
    for k in range(rng.randint(3, 5)):
        fx, top = x + (k - 2) * s * 0.4 + rng.uniform(-0.1, 0.1) * s, y - s * rng.uniform(1.2, 2.0)
        d.line([(x + (k - 2) * s * 0.1, y), (fx, top)], fill=255, width=max(1, int(s * 0.05)))
        heads.append((fx, top))

    def petals(img: Image.Image, scene: Scene) -> None:
        dd = ImageDraw.Draw(img)
        petal = mix(scene.accent, (240, 190, 40), 0.5)
        for fx, top in heads:
            for a in range(8):
                px, py = (
                    fx + math.cos(a * math.pi / 4) * s * 0.2,
                    top + math.sin(a * math.pi / 4) * s * 0.2,
                )
                dd.ellipse(
                    _box(px - s * 0.12, py - s * 0.12, px + s * 0.12, py + s * 0.12), fill=petal
                )
            dd.ellipse(
                _box(fx - s * 0.12, top - s * 0.12, fx + s * 0.12, top + s * 0.12),
                fill=(90, 56, 24),
            )

    return (60, 120, 50), petals


def _boat(d: Draw, x: float, y: float, s: float, f: int, rng: random.Random):  # type: ignore[no-untyped-def]
    d.polygon(
        [
            (x - s * 1.2, y - s * 0.35),
            (x + s * 1.2, y - s * 0.35),
            (x + s * 0.85, y),
            (x - s * 0.85, y),
        ],
        fill=255,
    )
    d.rectangle(_box(x - s * 0.04, y - s * 2.0, x + s * 0.04, y - s * 0.35), fill=255)

    def sail(img: Image.Image, scene: Scene) -> None:
        ImageDraw.Draw(img).polygon(
            [
                (x + f * s * 0.08, y - s * 1.95),
                (x + f * s * 0.9, y - s * 0.5),
                (x + f * s * 0.08, y - s * 0.5),
            ],
            fill=(240, 234, 220),
        )

    return (120, 60, 40), sail


def _car(d: Draw, x: float, y: float, s: float, f: int, rng: random.Random):  # type: ignore[no-untyped-def]
    d.rounded_rectangle(
        _box(x - s * 1.2, y - s * 0.65, x + s * 1.2, y - s * 0.2), s * 0.15, fill=255
    )
    d.rounded_rectangle(
        _box(x - s * 0.7, y - s * 1.0, x + s * 0.5, y - s * 0.55), s * 0.2, fill=255
    )

    def wheels(img: Image.Image, scene: Scene) -> None:
        dd = ImageDraw.Draw(img)
        for wx in (-0.7, 0.7):
            cx = x + wx * s
            dd.ellipse(
                _box(cx - s * 0.25, y - s * 0.45, cx + s * 0.25, y + s * 0.05), fill=(24, 24, 28)
            )
            dd.ellipse(
                _box(cx - s * 0.1, y - s * 0.3, cx + s * 0.1, y - s * 0.1), fill=(170, 170, 176)
            )

    return (180, 40, 36), wheels


PAINTERS: dict[str, Painter] = {
    **DISH_PAINTERS,
    "fox": _fox,
    "hare": _hare,
    "bird": _bird,
    "fish": _fish,
    "horse": _horse,
    "deer": _deer,
    "house": _house,
    "tower": _tower,
    "portal": _portal,
    "tree": _tree,
    "flower": _flower,
    "boat": _boat,
    "car": _car,
}
