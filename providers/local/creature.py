"""A creature for the monster concept artist: a horned silhouette in fog with glowing eyes."""

from __future__ import annotations

import math
import random

from PIL import Image, ImageDraw

from imagebot.providers.local.canvas import (
    blurred,
    glow,
    particles,
    rim_light,
    screen_glow,
    vgradient,
)
from imagebot.providers.local.style import RGB, Scene, adjust, mix

WHITE = (255, 255, 255)


def creature(img: Image.Image, scene: Scene, rng: random.Random) -> None:
    """A hulking horned silhouette in fog, its eyes glowing."""
    w, h = img.size
    u = min(w, h)
    s = scene.sky
    img.paste(vgradient(img.size, [adjust(s[0], 0.6), s[1], mix(s[2], scene.land[1], 0.5)]), (0, 0))
    cx = w * (rng.choice([0.4, 0.6]) if scene.thirds else 0.5)
    screen_glow(img, (cx, h * 0.45), u * 0.55, adjust(mix(s[3], scene.accent, 0.25), 0.7), 1.6)
    r = u * rng.uniform(0.22, 0.3)
    top = h * rng.uniform(0.25, 0.35)
    mask = Image.new("L", img.size, 0)
    d = ImageDraw.Draw(mask)
    d.ellipse((cx - r * 1.2, top, cx + r * 1.2, top + r * 2.6), fill=255)  # hunched back
    d.polygon(
        [(cx - r * 1.5, h), (cx - r * 1.0, top + r), (cx + r * 1.0, top + r), (cx + r * 1.5, h)],
        fill=255,
    )
    hx, hy = cx + rng.uniform(-0.15, 0.15) * r, top + r * 0.35
    hr = r * 0.42
    d.ellipse((hx - hr, hy - hr * 0.8, hx + hr, hy + hr * 1.1), fill=255)
    horn = rng.uniform(0.8, 1.6)
    for side in (-1, 1):
        base = (hx + side * hr * 0.6, hy - hr * 0.2)
        pts = [base]
        for k in range(1, 7):
            a = k / 6
            pts.append(
                (
                    base[0] + side * hr * (0.2 + 1.6 * a) * horn,
                    base[1] - hr * math.sin(a * 2.2) * 1.4 * horn,
                )
            )
        for k in range(len(pts) - 1):  # tapering to a point
            d.line(pts[k : k + 2], fill=255, width=max(1, int(hr * 0.55 * (1 - k / 7))))
        ax = cx + side * r * 1.15  # long arms with claws
        d.line(
            [
                (ax, top + r * 0.9),
                (ax + side * r * 0.35, top + r * 2.0),
                (ax + side * r * 0.25, top + r * 3.1),
            ],
            fill=255,
            width=int(r * 0.32),
            joint="curve",
        )
        for c in (-1, 0, 1):
            cxl = ax + side * r * 0.25 + c * r * 0.1
            d.polygon(
                [
                    (cxl - r * 0.05, top + r * 3.1),
                    (cxl + c * r * 0.06, top + r * 3.55),
                    (cxl + r * 0.05, top + r * 3.1),
                ],
                fill=255,
            )
    for k in range(9):  # spines along the back
        a = math.pi * (0.15 + 0.7 * k / 8)
        bx, by = cx - math.cos(a) * r * 1.15, top + r * 1.3 - math.sin(a) * r * 1.3
        d.polygon(
            [
                (bx - r * 0.08, by + 4),
                (bx - math.cos(a) * r * 0.35, by - math.sin(a) * r * 0.4),
                (bx + r * 0.08, by + 4),
            ],
            fill=255,
        )
    body = adjust(mix(scene.land[0], (8, 8, 12), 0.6), 0.8)
    rim_light(img, blurred(mask, u / 600), body, mix(s[4], scene.accent, 0.3), rng.choice([-1, 1]))
    eye = scene.accent if colour_strength(scene.accent) > 0.35 else (255, 70, 40)
    eye = adjust(eye, 1.2, 1.5)
    pairs = rng.choice([1, 1, 2])
    for p in range(pairs):
        for side in (-1, 1):
            x, y = hx + side * hr * 0.38 * (1 + p * 0.5), hy + hr * 0.15 - p * hr * 0.3
            glow(img, (x, y), hr * 0.7, eye, 0.5, 2.0)
            glow(img, (x, y), hr * 0.2, mix(eye, WHITE, 0.5), 1.0, 1.0)
    fog = Image.new("L", img.size, 0)
    fd = ImageDraw.Draw(fog)
    for _ in range(14):
        x, y = rng.uniform(-0.1, 1.1) * w, h * rng.uniform(0.8, 1.0)
        fw, fh = rng.uniform(0.15, 0.4) * w, rng.uniform(0.03, 0.08) * h
        fd.ellipse((x - fw, y - fh, x + fw, y + fh), fill=rng.randint(60, 140))
    img.paste(mix(s[3], s[2], 0.5), (0, 0), blurred(fog, u / 30))
    particles(
        img,
        rng,
        rng.randint(30, 90),
        mix(eye, (255, 200, 120), 0.5),
        (0.8, 2.2),
        230,
        0.8,
        (0, h * 0.3, w, h),
    )


def colour_strength(c: RGB) -> float:
    """Saturation of a colour, 0-1."""
    return (max(c) - min(c)) / 255
