"""Other worlds for the offline renderer: outer space, the deep sea, a storm's lightning."""

from __future__ import annotations

import math
import random

from PIL import Image, ImageDraw, ImageFilter

from imagebot.providers.local.canvas import (
    blurred,
    fill_below,
    glow,
    particles,
    radial,
    ramp_mask,
    ridge,
    screen_glow,
    stars,
    vgradient,
)
from imagebot.providers.local.style import RGB, Scene, adjust, mix

WHITE = (255, 255, 255)


def bolt(img: Image.Image, rng: random.Random, horizon: int) -> None:
    """A forked lightning bolt from the top of the sky."""
    w, h = img.size
    x, y = rng.uniform(0.2, 0.8) * w, 0.0
    pts = [(x, y)]
    while y < horizon * 0.9:
        y += rng.uniform(0.03, 0.08) * h
        x += rng.uniform(-0.04, 0.04) * w
        pts.append((x, y))
    layer = Image.new("L", img.size, 0)
    ImageDraw.Draw(layer).line(pts, fill=255, width=max(2, w // 300))
    img.paste((200, 210, 255), (0, 0), layer.filter(ImageFilter.GaussianBlur(w / 120)))
    img.paste((255, 255, 255), (0, 0), layer)


def space(img: Image.Image, scene: Scene, rng: random.Random, horizon: int) -> None:
    """Nebula clouds, dense stars and a shaded planet, sometimes ringed."""
    w, h = img.size
    for _ in range(rng.randint(3, 6)):  # nebula clouds
        c = rng.choice([scene.sky[3], scene.sky[4], scene.accent])
        glow(img, (rng.uniform(0, w), rng.uniform(0, horizon)), rng.uniform(0.2, 0.5) * w, c, 0.45)
    stars(img, rng, int(w * horizon / 300), horizon, (255, 255, 255))
    r = rng.uniform(0.1, 0.22) * min(w, h)
    cx, cy = rng.uniform(0.25, 0.75) * w, rng.uniform(0.25, 0.55) * horizon
    body = scene.land[2]
    planet = Image.new("RGB", (int(2 * r), int(2 * r)), adjust(body, 0.35))
    lx, ly = rng.choice([(0.35, 0.35), (0.65, 0.35)])
    light = radial((int(3 * r), int(3 * r)), 1.2)
    planet.paste(
        mix(body, WHITE, 0.25), (int(2 * r * lx - 1.5 * r), int(2 * r * ly - 1.5 * r)), light
    )
    disc = Image.new("L", planet.size, 0)
    ImageDraw.Draw(disc).ellipse((0, 0, planet.size[0] - 1, planet.size[1] - 1), fill=255)
    screen_glow(img, (cx, cy), r * 1.5, adjust(scene.sky[4], 0.6), 3)
    img.paste(planet, (int(cx - r), int(cy - r)), disc)
    if rng.random() < 0.6:
        ring = Image.new("L", img.size, 0)
        ImageDraw.Draw(ring).ellipse(
            (cx - r * 2, cy - r * 0.4, cx + r * 2, cy + r * 0.4),
            outline=200,
            width=max(2, int(r * 0.08)),
        )
        ImageDraw.Draw(ring).rectangle(
            (cx - r * 2, cy - r * 0.45, cx + r * 2, cy - r * 0.05), fill=0
        )
        img.paste(mix(scene.sky[4], WHITE, 0.3), (0, 0), blurred(ring, 1))


def underwater(img: Image.Image, scene: Scene, rng: random.Random) -> None:
    """Light from above fading into the deep, rays, a reef below, fish and bubbles."""
    w, h = img.size
    s = scene.sky
    img.paste(vgradient((w, h), [s[4], s[3], s[2], s[1], s[0]], [0, 0.12, 0.4, 0.75, 1]), (0, 0))
    rays = Image.new("L", img.size, 0)
    draw = ImageDraw.Draw(rays)
    for _ in range(rng.randint(5, 9)):
        x, spread = rng.uniform(-0.1, 1.1) * w, rng.uniform(0.02, 0.06) * w
        tilt = rng.uniform(0.1, 0.3) * w
        draw.polygon(
            [(x - spread, 0), (x + spread, 0), (x + tilt + spread * 3, h), (x + tilt, h)],
            fill=rng.randint(40, 90),
        )
    rays.paste(0, (0, 0), ramp_mask(img.size, 0, 255))
    img.paste(mix(s[4], WHITE, 0.5), (0, 0), blurred(rays, w / 60))
    for depth in (0.35, 0.7, 1.0):  # reef silhouettes, far to near
        colour = mix(s[2], mix(scene.land[0], s[0], 0.5), depth)
        line = ridge(rng, w, h * (0.95 - 0.12 * (1 - depth)), h * 0.06, 0.55)
        fill_below(img, line, colour)
        draw = ImageDraw.Draw(img)
        for _ in range(int(10 * depth) + 3):  # kelp
            x = rng.uniform(0, w)
            y = line[min(len(line) - 1, int(x / w * (len(line) - 1)))][1]
            pts = [
                (x + math.sin(k * 0.7 + x) * w * 0.015, y - k * h * 0.035)
                for k in range(rng.randint(4, 12))
            ]
            draw.line(pts, fill=colour, width=max(2, int(w * 0.008 * depth)), joint="curve")
    _fish(img, rng, scene)
    bubbles = Image.new("L", img.size, 0)
    draw = ImageDraw.Draw(bubbles)
    for _ in range(rng.randint(20, 60)):
        x, y, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(1, w / 90)
        draw.ellipse((x - r, y - r, x + r, y + r), outline=170, width=1)
    img.paste(WHITE, (0, 0), bubbles)
    particles(img, rng, int(w * h / 3000), mix(s[4], WHITE, 0.5), (0.5, 1.2), 120)


def _fish(img: Image.Image, rng: random.Random, scene: Scene) -> None:
    w, h = img.size
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randint(1, 3)):
        cx, cy = rng.uniform(0.1, 0.9) * w, rng.uniform(0.2, 0.7) * h
        size = rng.uniform(0.012, 0.03) * w
        colour: RGB = mix(scene.sky[1], scene.accent, rng.uniform(0.0, 0.5))
        direction = rng.choice([-1, 1])
        for _ in range(rng.randint(5, 16)):
            x, y = cx + rng.gauss(0, w * 0.08), cy + rng.gauss(0, h * 0.05)
            draw.ellipse((x - size, y - size * 0.45, x + size, y + size * 0.45), fill=colour)
            tail = x - direction * size
            fin = tail - direction * size * 0.7
            draw.polygon([(tail, y), (fin, y - size * 0.45), (fin, y + size * 0.45)], fill=colour)
