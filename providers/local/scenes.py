"""Wide scenes for the offline renderer: horizon landscapes, cities, space, underwater."""

from __future__ import annotations

import math
import random

from PIL import Image, ImageDraw

from imagebot.providers.local.canvas import (
    blurred,
    fill_below,
    glow,
    particles,
    ramp_mask,
    reflect,
    ridge,
    screen_glow,
    smooth_line,
    stars,
    vgradient,
)
from imagebot.providers.local.style import Scene, adjust, mix
from imagebot.providers.local.worlds import bolt, space

WHITE = (255, 255, 255)


def sky(img: Image.Image, scene: Scene, rng: random.Random, horizon: int) -> tuple[float, float]:
    """Paint the sky, clouds, stars and sun or moon; return where the light is."""
    w, h = img.size
    s = scene.sky
    night = scene.time == "night"
    stops = [s[0], s[1], s[2], s[3]] if night else [s[1], s[2], s[3], s[4]]
    img.paste(vgradient((w, horizon + 2), stops, [0, 0.45, 0.8, 1.0]), (0, 0))
    low = scene.time in ("sunset", "dawn", "golden")
    sun_x = w * rng.choice([rng.uniform(0.2, 0.4), rng.uniform(0.6, 0.8), rng.uniform(0.4, 0.6)])
    sun_y = horizon * (rng.uniform(0.72, 0.9) if low else rng.uniform(0.18, 0.4))
    if night:
        stars(img, rng, int(w * horizon / 900), horizon * 0.9, (240, 240, 255))
    _clouds(img, scene, rng, horizon, (sun_x, sun_y))
    sun_col = mix(s[4], WHITE, 0.5) if not night else (236, 236, 226)
    size = min(w, h)
    if "storm" in scene.flags and not low:
        return sun_x, sun_y
    if night:
        r = size * rng.uniform(0.035, 0.06)
        screen_glow(img, (sun_x, sun_y), r * 9, mix(s[3], WHITE, 0.2), 2.5)
        moon = Image.new("L", img.size, 0)
        draw = ImageDraw.Draw(moon)
        draw.ellipse((sun_x - r, sun_y - r, sun_x + r, sun_y + r), fill=255)
        if rng.random() < 0.6:  # a crescent: cut a second disc out of the first
            off = rng.choice([-1, 1]) * r * rng.uniform(0.5, 1.2)
            draw.ellipse(
                (sun_x + off - r, sun_y - r * 1.1, sun_x + off + r, sun_y + r * 0.9), fill=0
            )
        img.paste(sun_col, (0, 0), blurred(moon, r * 0.05))
        return sun_x, sun_y
    haze = "fog" in scene.flags
    screen_glow(img, (sun_x, sun_y), size * (0.55 if low else 0.35), adjust(s[4], 0.85), 2.2)
    glow(img, (sun_x, sun_y), size * 0.12, mix(s[4], WHITE, 0.3), 0.8, 1.6)
    r = size * (0.05 if low else 0.035) * (1.4 if haze else 1.0)
    disc = Image.new("L", img.size, 0)
    ImageDraw.Draw(disc).ellipse(
        (sun_x - r, sun_y - r, sun_x + r, sun_y + r), fill=160 if haze else 255
    )
    img.paste(sun_col, (0, 0), blurred(disc, r * (0.5 if haze else 0.08)))
    return sun_x, sun_y


def _clouds(img: Image.Image, scene: Scene, rng: random.Random, horizon: int, sun) -> None:  # type: ignore[no-untyped-def]
    w, h = img.size
    count = rng.choice([0, 3, 5, 8]) + (10 if "storm" in scene.flags else 0)
    if not count:
        return
    mask = Image.new("L", img.size, 0)
    draw = ImageDraw.Draw(mask)
    for _ in range(count):
        cy = rng.uniform(0.08, 0.75) * horizon
        cx = rng.uniform(-0.1, 1.1) * w
        cw = rng.uniform(0.15, 0.45) * w
        for _ in range(rng.randint(3, 6)):
            px, py = cx + rng.uniform(-cw / 2, cw / 2), cy + rng.uniform(-0.02, 0.02) * h
            rw, rh = cw * rng.uniform(0.2, 0.45), h * rng.uniform(0.012, 0.04)
            draw.ellipse((px - rw, py - rh, px + rw, py + rh), fill=rng.randint(110, 200))
    mask = blurred(mask, min(w, h) * 0.012)
    s = scene.sky
    lit = mix(s[4], WHITE, 0.4) if scene.time != "night" else mix(s[2], s[3], 0.5)
    if scene.time in ("sunset", "dawn"):
        lit = mix(s[3], s[4], 0.6)
    if "storm" in scene.flags:
        lit = mix(s[1], s[2], 0.6)
    shade = mix(s[1], s[2], 0.5)
    img.paste(shade, (0, int(h * 0.006)), mask)
    img.paste(lit, (0, 0), mask.point(lambda v: int(v * 0.85)))


def landscape(img: Image.Image, scene: Scene, rng: random.Random) -> int:
    """A horizon scene: sky, layered silhouettes, water, fog, weather; returns the horizon row."""
    w, h = img.size
    water = "water" in scene.flags
    horizon = int(h * (rng.uniform(0.5, 0.62) if water else rng.uniform(0.55, 0.72)))
    if scene.thirds:
        horizon = int(h * (0.62 if water else 0.66))
    sun = sky(img, scene, rng, horizon)
    if scene.setting == "space":
        space(img, scene, rng, horizon)
    land = scene.land
    haze = mix(scene.sky[3], scene.sky[4], 0.5) if scene.time != "night" else scene.sky[2]
    bottom = horizon if water else h
    layers = rng.randint(3, 5) if not water else rng.randint(2, 3)
    if "islands" in scene.flags or (scene.finish == "glow" and rng.random() < 0.5):
        _islands(img, scene, rng, horizon, haze)
    for i in range(layers):
        t = (i + 1) / layers  # 0 far .. 1 near
        colour = mix(haze, mix(land[2], land[0], t), 0.25 + 0.75 * t)
        if scene.time == "night":
            colour = adjust(colour, 0.55)
        base = horizon - h * (0.2 * (1 - t) if water else 0.16 - 0.26 * t)
        line = _skyline(scene, rng, w, h, base, t, water)
        fill = colour
        if t > 0.5 and not water:
            fill = vgradient((w, h), [mix(colour, land[3], 0.35), colour, adjust(colour, 0.6)])
        mask = fill_below(img, line, fill, bottom)
        if scene.setting == "city":
            _windows(img, scene, rng, mask, t, base + h * 0.04)
        if scene.setting == "forest" or (scene.setting == "hills" and t > 0.6):
            _trees(img, rng, line, colour, h * (0.05 + 0.1 * t) * (0.5 if water else 1), bottom)
        if "castle" in scene.flags and i == layers - 2:
            _castle(img, rng, line, colour, h)
        fog_alpha = 110 if "fog" in scene.flags else 60
        top = int(min(p[1] for p in line))
        band = ramp_mask((w, max(1, int(bottom) - top)), 0, int(fog_alpha * (1 - t * 0.7)))
        img.paste(haze, (0, top), band)
    if water:
        tint = mix(scene.land[2], scene.sky[2], 0.5)
        reflect(img, horizon, tint, rng, 0.35 if scene.setting != "ocean" else 0.5)
        _glitter(img, rng, sun, horizon, mix(scene.sky[4], WHITE, 0.4), scene.time == "night")
    if "fog" in scene.flags:
        img.paste(haze, (0, 0), ramp_mask(img.size, 20, 70))
    if "snow" in scene.flags:
        particles(img, rng, int(w * h / 1500), (250, 250, 255), (0.6, 2.2), 230, 0.5)
    if "storm" in scene.flags and rng.random() < 0.5:
        bolt(img, rng, horizon)
    return horizon


def _skyline(scene: Scene, rng, w, h, base, t, water) -> list:  # type: ignore[no-untyped-def]
    if scene.setting == "city":
        pts = []
        x = -5.0
        while x < w + 5:
            bw = rng.uniform(0.03, 0.09) * w
            top = base - rng.uniform(0.02, 0.25) * h * (1.2 - t * 0.5)
            pts += [(x, top), (x + bw, top)]
            if rng.random() < 0.2:  # a spire
                pts[-1:-1] = [
                    (x + bw * 0.45, top),
                    (x + bw * 0.5, top - h * 0.05),
                    (x + bw * 0.55, top),
                ]
            x += bw
        return pts
    if scene.setting in ("desert", "ocean", "lake") or (scene.setting == "hills" and t > 0.3):
        return smooth_line(rng, w, base, h * (0.05 if water else 0.07) * (1.2 - t * 0.6))
    if scene.setting == "space":
        return ridge(rng, w, base, h * 0.08, 0.5)
    amp = h * (0.14 if scene.setting == "mountain" else 0.09) * (1.3 - t * 0.7)
    return ridge(rng, w, base, amp, 0.52 if t < 0.7 else 0.45)


def _windows(img: Image.Image, scene: Scene, rng, mask: Image.Image, t: float, floor) -> None:  # type: ignore[no-untyped-def]
    if scene.time not in ("night", "sunset", "dawn"):
        return
    w, h = img.size
    draw = ImageDraw.Draw(img)
    lit = mix(scene.accent, (255, 214, 140), 0.5)
    size = max(1, int(h * 0.006 * (0.6 + t)))
    for _ in range(int(w * h / 400 * t)):
        x, y = rng.uniform(0, w - 1), rng.uniform(0, h - 1)
        if y < floor and mask.getpixel((int(x), int(y))) > 200 and rng.random() < 0.5:
            draw.rectangle(
                (x, y, x + size, y + size * 1.4), fill=mix(lit, (255, 255, 255), rng.random() * 0.3)
            )


def _trees(img, rng, line, colour, height, bottom) -> None:  # type: ignore[no-untyped-def]
    draw = ImageDraw.Draw(img)
    w = img.size[0]
    x = rng.uniform(0, height * 0.4)
    while x < w:
        i = min(len(line) - 1, int(x / w * (len(line) - 1)))
        y = line[i][1]
        th = height * rng.uniform(0.5, 1.3)
        tw = th * rng.uniform(0.22, 0.32)
        if y < bottom:
            draw.polygon([(x, y - th), (x + tw, y + 2), (x - tw, y + 2)], fill=colour)
        x += tw * rng.uniform(0.7, 1.6)


def _castle(img, rng, line, colour, h) -> None:  # type: ignore[no-untyped-def]
    w = img.size[0]
    cx = w * rng.uniform(0.25, 0.75)
    y = line[min(len(line) - 1, int(cx / w * (len(line) - 1)))][1]
    draw = ImageDraw.Draw(img)
    unit = h * 0.02
    for dx, tall in ((-3, 5), (-1.5, 3), (0, 8), (1.5, 4), (3, 6)):
        x = cx + dx * unit
        top = y - tall * unit
        draw.rectangle((x - unit * 0.6, top, x + unit * 0.6, y + unit), fill=colour)
        draw.polygon(
            [(x - unit * 0.8, top), (x, top - unit * 1.8), (x + unit * 0.8, top)], fill=colour
        )


def _islands(img, scene: Scene, rng, horizon, haze) -> None:  # type: ignore[no-untyped-def]
    w, h = img.size
    for _ in range(rng.randint(1, 3)):
        cx, cy = rng.uniform(0.15, 0.85) * w, rng.uniform(0.2, 0.5) * horizon
        rw = rng.uniform(0.06, 0.14) * w
        colour = mix(haze, scene.land[1], rng.uniform(0.4, 0.7))
        pts = [(cx - rw, cy)]
        for k in range(1, 8):
            f = k / 8
            pts.append(
                (cx - rw + 2 * rw * f, cy + math.sin(math.pi * f) * rw * rng.uniform(0.6, 1.1))
            )
        pts.append((cx + rw, cy))
        draw = ImageDraw.Draw(img)
        draw.polygon(pts, fill=colour)
        draw.ellipse(
            (cx - rw, cy - rw * 0.12, cx + rw, cy + rw * 0.1), fill=mix(colour, scene.land[3], 0.4)
        )


def _glitter(img, rng, sun, horizon, colour, night) -> None:  # type: ignore[no-untyped-def]
    w, h = img.size
    mask = Image.new("L", img.size, 0)
    draw = ImageDraw.Draw(mask)
    for _ in range(int((h - horizon) * 1.2)):
        y = horizon + rng.uniform(0, 1) ** 1.5 * (h - horizon)
        spread = w * (0.02 + 0.12 * (y - horizon) / max(1, h - horizon))
        x = sun[0] + rng.gauss(0, spread)
        length = rng.uniform(0.01, 0.05) * w
        draw.line(
            (x - length / 2, y, x + length / 2, y), fill=rng.randint(80, 220 if not night else 150)
        )
    img.paste(colour, (0, 0), blurred(mask, 0.7))
