"""Clean 3D-looking objects on a studio floor, and flat illustrated patterns."""

from __future__ import annotations

import math
import random

from PIL import Image, ImageDraw

from imagebot.providers.local.canvas import blurred, glow, radial, ramp_mask, vgradient
from imagebot.providers.local.style import RGB, Scene, adjust, mix

WHITE = (255, 255, 255)
Point = tuple[float, float]


def objects(img: Image.Image, scene: Scene, rng: random.Random) -> None:
    """Spheres, cubes and cylinders with soft shadows in a seamless studio cove."""
    w, h = img.size
    u = min(w, h)
    s = scene.sky
    wall = mix(s[3], s[4], 0.5)
    floor_y = rng.uniform(0.55, 0.65)
    floor = mix(wall, mix(s[4], WHITE, 0.3), 0.4)
    img.paste(vgradient(img.size, [adjust(wall, 0.85), wall, floor, mix(floor, s[3], 0.3)],
                        [0, floor_y - 0.05, floor_y + 0.05, 1]), (0, 0))  # fmt: skip
    glow(img, (w * 0.35, h * 0.3), u * 0.8, mix(s[4], WHITE, 0.6), 0.45)
    colours = [
        scene.accent,
        scene.land[2],
        scene.land[3],
        s[2],
        mix(scene.accent, scene.land[3], 0.5),
    ]
    colours = [mix(adjust(c, 1.05, 1.25), WHITE, 0.12) for c in colours]
    placed = []
    count = rng.randint(3, 5)
    slots = [0.18 + 0.64 * (k + rng.uniform(0.2, 0.8)) / count for k in range(count)]
    rng.shuffle(slots)  # spread across the floor so the shapes do not pile up
    for x in slots:
        y = h * rng.uniform(floor_y + 0.1, 0.9)
        placed.append((y, w * x, rng.choice("sscy" if len(placed) else "sc")))
    placed.sort()
    for k, (y, x, kind) in enumerate(placed):
        size = u * rng.uniform(0.08, 0.15) * (0.5 + 0.8 * (y / h))
        colour = colours[k % len(colours)]
        _shadow(img, x + size * 0.35, y, size * (1.5 if kind != "y" else 1.2), u)
        if kind == "s":
            sphere(img, (x, y - size), size, colour)
        elif kind == "c":
            cube(img, (x, y), size * 1.1, colour)
        else:
            cylinder(img, (x, y), size * 0.8, size * 2.2, colour)


def _shadow(img: Image.Image, x: float, y: float, r: float, u: int) -> None:
    mask = Image.new("L", img.size, 0)
    ImageDraw.Draw(mask).ellipse((x - r, y - r * 0.22, x + r, y + r * 0.22), fill=130)
    img.paste((30, 28, 40), (0, 0), blurred(mask, r * 0.35))


def sphere(img: Image.Image, centre: Point, r: float, colour: RGB) -> None:
    """A glossy sphere lit from the upper left."""
    cx, cy = centre
    d = int(2 * r)
    ball = Image.new("RGB", (d, d), adjust(colour, 0.45))
    ball.paste(colour, (int(-0.8 * r), int(-0.8 * r)), radial((int(3.0 * r), int(3.0 * r)), 0.9))
    ball.paste(
        mix(colour, WHITE, 0.45),
        (int(0.15 * r), int(0.15 * r)),
        radial((int(0.9 * r), int(0.9 * r)), 1.4),
    )
    bounce = ramp_mask((d, d), 0, 70).point(lambda v: max(0, v * 3 - 140))
    ball.paste(mix(colour, WHITE, 0.3), (0, 0), bounce)
    disc = Image.new("L", (d, d), 0)
    ImageDraw.Draw(disc).ellipse((0, 0, d - 1, d - 1), fill=255)
    img.paste(ball, (int(cx - r), int(cy - r)), blurred(disc, 0.7))
    glow(img, (cx - r * 0.38, cy - r * 0.42), r * 0.22, WHITE, 0.9, 1.5)


def cube(img: Image.Image, base: Point, s: float, colour: RGB) -> None:
    """An isometric cube standing on `base`: lit top, mid left face, dark right face."""
    x, y = base
    dx, dy = s * 0.87, s * 0.5
    top = [
        (x, y - 2 * s - 0 * dy),
        (x + dx, y - 2 * s + dy),
        (x, y - 2 * s + 2 * dy),
        (x - dx, y - 2 * s + dy),
    ]
    left = [(x - dx, y - 2 * s + dy), (x, y - 2 * s + 2 * dy), (x, y), (x - dx, y - dy)]
    right = [(x, y - 2 * s + 2 * dy), (x + dx, y - 2 * s + dy), (x + dx, y - dy), (x, y)]
    d = ImageDraw.Draw(img)
    d.polygon(top, fill=mix(colour, WHITE, 0.35))
    d.polygon(left, fill=colour)
    d.polygon(right, fill=adjust(colour, 0.62))
    d.line([top[3], top[2], top[1]], fill=mix(colour, WHITE, 0.55), width=max(1, int(s / 40)))


def cylinder(img: Image.Image, base: Point, r: float, height: float, colour: RGB) -> None:
    """An upright cylinder, shaded across its body."""
    x, y = base
    e = r * 0.35
    body = Image.new("RGB", (int(2 * r), int(height)), adjust(colour, 0.6))
    body.paste(colour, (0, 0), ramp_mask(body.size, 255, 0, horizontal=True))
    mask = Image.new("L", img.size, 0)
    md = ImageDraw.Draw(mask)
    md.rectangle((x - r, y - height, x + r, y), fill=255)
    md.ellipse((x - r, y - e, x + r, y + e), fill=255)
    full = Image.new("RGB", img.size)
    full.paste(body, (int(x - r), int(y - height)))
    full.paste(body.resize((body.size[0], int(2 * e) + 1)), (int(x - r), int(y - e)))
    img.paste(full, (0, 0), mask)
    ImageDraw.Draw(img).ellipse(
        (x - r, y - height - e, x + r, y - height + e), fill=mix(colour, WHITE, 0.3)
    )


# --------------------------------------------------------------------------- flat pattern


def _rot(points: list[Point], cx: float, cy: float, angle: float) -> list[Point]:
    c, s = math.cos(angle), math.sin(angle)
    return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in points]


def _leaf(size: float) -> list[Point]:
    top = [(size * (t / 10 - 0.5), -size * 0.32 * math.sin(math.pi * t / 10)) for t in range(11)]
    return top + [(x, -y) for x, y in reversed(top)]


def _star(size: float, points: int = 5) -> list[Point]:
    return [
        ((size if k % 2 == 0 else size * 0.45) * math.cos(math.pi * k / points - math.pi / 2),
         (size if k % 2 == 0 else size * 0.45) * math.sin(math.pi * k / points - math.pi / 2))
        for k in range(2 * points)
    ]  # fmt: skip


def _blob(rng: random.Random, size: float) -> list[Point]:
    phases = [rng.uniform(0, 6.28) for _ in range(3)]
    out = []
    for k in range(24):
        a = 2 * math.pi * k / 24
        rr = size * (1 + 0.12 * sum(math.sin((j + 2) * a + p) for j, p in enumerate(phases)))
        out.append((rr * math.cos(a), rr * math.sin(a)))
    return out


def pattern(img: Image.Image, scene: Scene, rng: random.Random) -> None:
    """A flat, hand-cut scatter of leaves, stars, blobs and squiggles with offset shadows."""
    w, h = img.size
    u = min(w, h)
    dark_ground = rng.random() < 0.35
    ground = adjust(scene.land[0], 0.9) if dark_ground else mix(scene.sky[4], (250, 240, 225), 0.4)
    img.paste(ground, (0, 0, w, h))
    shadow = adjust(ground, 0.75) if not dark_ground else adjust(ground, 0.5)
    colours = [scene.accent, scene.sky[2], scene.sky[3], scene.land[2], scene.land[3]]
    colours = [adjust(c, 1.0, 1.2) for c in colours]
    d = ImageDraw.Draw(img)
    for _ in range(rng.randint(3, 5)):  # large soft shapes behind
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        d.polygon(
            _rot(_blob(rng, u * rng.uniform(0.15, 0.3)), x, y, 0),
            fill=mix(ground, rng.choice(colours), 0.25),
        )
    kinds = rng.sample(["leaf", "leaf", "star", "blob", "dot", "ring", "squiggle", "tri"], 4)
    cols = rng.randint(4, 7)
    cell = w / cols
    rows = int(h / cell) + 1
    off = u * 0.012
    for r in range(rows + 1):
        for c in range(cols + 1):
            x = (c + 0.5 * (r % 2)) * cell + rng.uniform(-0.25, 0.25) * cell
            y = r * cell + rng.uniform(-0.25, 0.25) * cell
            kind, colour = rng.choice(kinds), rng.choice(colours)
            size, angle = cell * rng.uniform(0.25, 0.42), rng.uniform(0, math.pi)
            _flat(d, rng, kind, x, y, size, angle, colour, shadow, off)


def _flat(d: ImageDraw.ImageDraw, rng, kind, x, y, size, angle, colour, shadow, off) -> None:  # type: ignore[no-untyped-def]
    width = max(2, int(size * 0.18))
    blob = _blob(rng, size * 0.8) if kind == "blob" else []
    for dx, fill in ((off, shadow), (0, colour)):
        px, py = x + dx, y + dx
        if kind == "leaf":
            d.polygon(_rot(_leaf(size * 2), px, py, angle), fill=fill)
            if dx == 0:
                a, b = _rot([(-size, 0), (size * 0.8, 0)], px, py, angle)
                d.line([a, b], fill=adjust(colour, 0.75), width=max(1, width // 3))
        elif kind == "star":
            d.polygon(_rot(_star(size), px, py, angle), fill=fill)
        elif kind == "blob":
            d.polygon(_rot(blob, px, py, angle), fill=fill)
        elif kind == "dot":
            d.ellipse(
                (px - size * 0.5, py - size * 0.5, px + size * 0.5, py + size * 0.5), fill=fill
            )
        elif kind == "ring":
            d.ellipse(
                (px - size * 0.7, py - size * 0.7, px + size * 0.7, py + size * 0.7),
                outline=fill,
                width=width,
            )
        elif kind == "tri":
            d.polygon(
                _rot(
                    [(0, -size), (size * 0.87, size * 0.5), (-size * 0.87, size * 0.5)],
                    px,
                    py,
                    angle,
                ),
                fill=fill,
            )
        else:
            pts = [(size * (t / 8 - 1), size * 0.3 * math.sin(t * 1.2)) for t in range(17)]
            d.line(_rot(pts, px, py, angle), fill=fill, width=width, joint="curve")
