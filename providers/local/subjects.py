"""Centred subjects for the offline renderer: portrait, animal, plate of food, creature."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from PIL import Image, ImageDraw, ImageFilter

from imagebot.providers.local.canvas import (
    blurred,
    glow,
    radial,
    ramp_mask,
    rim_light,
    vgradient,
)
from imagebot.providers.local.creature import creature
from imagebot.providers.local.scenes import landscape
from imagebot.providers.local.style import RGB, Scene, adjust, hex_rgb, mix

WHITE = (255, 255, 255)
WOOD = ("#2a170e", "#4a2a18", "#7a4a2a", "#a87040", "#d8a870")


def backdrop(img: Image.Image, scene: Scene, rng: random.Random, blur: float = 28) -> None:
    """A landscape thrown out of focus, with bokeh discs: a shallow depth of field."""
    w, h = img.size
    # painted at half size: it is about to be blurred anyway, and it halves the work
    far = Image.new("RGB", (max(16, w // 2), max(16, h // 2)), scene.sky[2])
    flags = scene.flags
    scene.flags = flags - {"snow", "storm"}
    landscape(far, scene, rng)
    scene.flags = flags
    far = far.filter(ImageFilter.GaussianBlur(min(far.size) / blur))
    img.paste(far.resize((w, h), Image.Resampling.BILINEAR), (0, 0))
    bokeh(img, rng, [mix(scene.sky[4], WHITE, 0.3), scene.accent, scene.sky[3]])


def bokeh(img: Image.Image, rng: random.Random, colours: list[RGB], count: int = 0) -> None:
    """Out-of-focus highlights: soft discs with slightly brighter rims."""
    w, h = img.size
    for colour in colours:
        mask = Image.new("L", img.size, 0)
        draw = ImageDraw.Draw(mask)
        for _ in range(count or rng.randint(6, 14)):
            x, y = rng.uniform(0, w), rng.uniform(0, h * 0.75)
            r = rng.uniform(0.015, 0.06) * min(w, h)
            a = rng.randint(40, 110)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=a, outline=min(255, a + 40), width=2)
        img.paste(colour, (0, 0), blurred(mask, min(w, h) / 250))


def portrait(img: Image.Image, scene: Scene, rng: random.Random) -> None:
    """A backlit head-and-shoulders figure against a blurred scene."""
    backdrop(img, scene, rng)
    w, h = img.size
    u = min(w, h)
    cx = w * (rng.choice([0.38, 0.62]) if scene.thirds else 0.5)
    r = u * rng.uniform(0.11, 0.14)
    cy = h * 0.46
    mask = Image.new("L", img.size, 0)
    d = ImageDraw.Draw(mask)
    d.ellipse((cx - r * 0.82, cy - r, cx + r * 0.82, cy + r * 1.05), fill=255)  # head
    d.rectangle((cx - r * 0.35, cy + r * 0.6, cx + r * 0.35, cy + r * 1.7), fill=255)  # neck
    neck = [(-0.4, 1.2), (-0.5, 1.9), (0.5, 1.9), (0.4, 1.2)]
    d.polygon([(cx + r * x, cy + r * y) for x, y in neck], fill=255)
    d.rounded_rectangle((cx - r * 2.5, cy + r * 1.75, cx + r * 2.5, h + r), r * 1.3, fill=255)
    hair = rng.random()
    d.ellipse((cx - r * 0.95, cy - r * 1.15, cx + r * 0.95, cy + r * 0.4), fill=255)
    if hair < 0.5:  # long hair falling behind the shoulders
        d.ellipse((cx - r * 1.15, cy - r * 1.1, cx + r * 1.15, cy + r * 2.6), fill=255)
    elif hair < 0.75:  # a hat brim
        d.ellipse((cx - r * 1.7, cy - r * 0.75, cx + r * 1.7, cy - r * 0.35), fill=255)
        d.ellipse((cx - r * 0.9, cy - r * 1.6, cx + r * 0.9, cy - r * 0.4), fill=255)
    mask = blurred(mask, u / 500)
    side = 1 if cx < w / 2 else -1
    body = adjust(mix(scene.land[0], scene.sky[1], 0.3), 0.9)
    fill = vgradient(img.size, [mix(body, scene.land[2], 0.35), body, adjust(body, 0.7)])
    front = radial((int(r * 3), int(r * 3)), 1.5, 0.35)
    fill.paste(
        mix(scene.sky[4], (240, 200, 170), 0.5),
        (int(cx - r * 1.5 - side * r * 0.4), int(cy - r * 1.4)),
        front,
    )
    rim_light(img, mask, fill, mix(scene.sky[4], WHITE, 0.45), side)


def animal(img: Image.Image, scene: Scene, rng: random.Random) -> None:
    """A sitting animal silhouette, ears up and tail curled, rim lit in a blurred landscape."""
    backdrop(img, scene, rng, blur=40)
    w, h = img.size
    u = min(w, h)
    ground = h * rng.uniform(0.8, 0.9)
    img.paste(
        adjust(scene.land[1], 0.8),
        (0, 0),
        ramp_mask(img.size, 0, 255).point(lambda v: 255 if v > 255 * ground / h else int(v * 0.3)),
    )
    cx = w * (rng.choice([0.38, 0.62]) if scene.thirds else 0.5)
    r = u * rng.uniform(0.13, 0.17)
    facing = rng.choice([-1, 1])
    mask = Image.new("L", img.size, 0)
    d = ImageDraw.Draw(mask)
    d.ellipse((cx - r, ground - r * 2.2, cx + r, ground), fill=255)  # body
    d.ellipse(
        (cx - r * 1.15, ground - r * 0.9, cx + r * 1.15, ground + r * 0.05), fill=255
    )  # haunch
    hx, hy, hr = cx + facing * r * 0.2, ground - r * 2.45, r * 0.62
    d.ellipse((hx - hr, hy - hr * 0.9, hx + hr, hy + hr * 0.9), fill=255)  # head
    d.polygon([(hx + facing * hr * 0.4, hy), (hx + facing * hr * 1.2, hy + hr * 0.3),
               (hx + facing * hr * 0.4, hy + hr * 0.6)], fill=255)  # fmt: skip
    for ex in (-0.6, 0.45):  # ears
        x = hx + ex * hr
        d.polygon(
            [
                (x - hr * 0.35, hy - hr * 0.5),
                (x + hr * 0.05, hy - hr * 1.7),
                (x + hr * 0.45, hy - hr * 0.45),
            ],
            fill=255,
        )
    tail = [
        (
            cx - facing * r * (0.75 + 0.55 * math.sin(k / 7 * math.pi * 0.8)),
            ground - r * 0.15 - k / 7 * r,
        )
        for k in range(8)
    ]  # curls up beside the body
    d.line(tail, fill=255, width=int(r * 0.26), joint="curve")
    body = adjust(mix(scene.land[0], scene.land[2], 0.35), 0.8)
    fill = vgradient(img.size, [mix(body, scene.land[3], 0.3), body, adjust(body, 0.6)])
    rim_light(img, blurred(mask, u / 400), fill, mix(scene.sky[4], WHITE, 0.4), -facing)
    eye = mix(scene.accent, (255, 230, 140), 0.5)
    for ex in (0.05, 0.45):
        x = hx + facing * ex * hr
        glow(img, (x, hy - hr * 0.05), hr * 0.18, eye, 0.9, 1.2)


def plate(img: Image.Image, scene: Scene, rng: random.Random) -> None:
    """A dish on a wooden table, shot from above or at an angle with a blurred background."""
    w, h = img.size
    u = min(w, h)
    # a wooden table whatever the scene: the role's and prompt's colours only tint it
    wood = [mix(c, hex_rgb(t), 0.55) for c, t in zip(scene.land, WOOD, strict=True)]
    overhead = rng.random() < 0.5
    table_top = 0 if overhead else int(h * rng.uniform(0.35, 0.45))
    if not overhead:
        backdrop(img, scene, rng, blur=22)
    table = vgradient(
        (w, h - table_top), [mix(wood[1], wood[2], 0.5), wood[1], adjust(wood[0], 0.9)]
    )
    grain = Image.new("L", table.size, 0)
    d = ImageDraw.Draw(grain)
    for _ in range(int(h / 3)):
        y = rng.uniform(0, table.size[1])
        d.line(
            [(x, y + math.sin(x / w * 6 + y) * 3) for x in range(-10, w + 20, max(8, w // 40))],
            fill=rng.randint(20, 70),
            width=1,
        )
    table.paste(adjust(wood[0], 0.7), (0, 0), blurred(grain, 0.8))
    img.paste(table, (0, table_top))
    cx, cy = w * rng.uniform(0.42, 0.58), (h * 0.5 if overhead else h * 0.66)
    pr = u * rng.uniform(0.3, 0.36)
    squash = 1.0 if overhead else 0.5
    dish = mix((240, 236, 228), scene.sky[4], 0.15)
    shadow = Image.new("L", img.size, 0)
    ImageDraw.Draw(shadow).ellipse(
        (cx - pr, cy - pr * squash + pr * 0.08, cx + pr * 1.05, cy + pr * squash + pr * 0.1),
        fill=170,
    )
    img.paste((20, 14, 10), (0, 0), blurred(shadow, u / 40))
    d = ImageDraw.Draw(img)
    d.ellipse((cx - pr, cy - pr * squash, cx + pr, cy + pr * squash), fill=dish)
    ir = pr * 0.72
    well = Image.new("L", img.size, 0)
    ImageDraw.Draw(well).ellipse((cx - ir, cy - ir * squash, cx + ir, cy + ir * squash), fill=255)
    img.paste(adjust(dish, 0.88), (0, 0), blurred(well, u / 200))
    food_colours = [scene.accent, wood[3], wood[2], (196, 62, 40), (86, 140, 60), (232, 190, 80)]
    rng.shuffle(food_colours)
    for k in range(rng.randint(18, 40)):
        a, dist = rng.uniform(0, 2 * math.pi), ir * 0.72 * math.sqrt(rng.random())
        x, y = cx + math.cos(a) * dist, cy + math.sin(a) * dist * squash
        br = ir * rng.uniform(0.1, 0.28)
        c = food_colours[k % 4]
        d.ellipse((x - br, y - br * squash, x + br, y + br * squash), fill=adjust(c, 0.75))
        hr = br * 0.7
        d.ellipse(
            (
                x - hr - br * 0.15,
                y - hr * squash - br * 0.15 * squash,
                x + hr - br * 0.15,
                y + hr * squash - br * 0.15 * squash,
            ),
            fill=c,
        )
    for _ in range(rng.randint(8, 20)):  # herbs and seeds
        a, dist = rng.uniform(0, 2 * math.pi), ir * 0.8 * math.sqrt(rng.random())
        x, y = cx + math.cos(a) * dist, cy + math.sin(a) * dist * squash
        lr = ir * rng.uniform(0.03, 0.07)
        d.ellipse(
            (x - lr, y - lr * 0.5, x + lr, y + lr * 0.5),
            fill=mix((70, 130, 55), scene.land[3], 0.2),
        )
    for x0, y0 in ((cx - pr * 0.5, cy - pr * 0.5 * squash),):  # a highlight on the glaze
        glow(img, (x0, y0), pr * 0.5, WHITE, 0.18)
    _props(img, rng, scene, cx, cy, pr, squash)
    if not overhead:  # shallow focus: the far part of the table melts away
        far = img.filter(ImageFilter.GaussianBlur(u / 70))
        img.paste(
            far, (0, 0), ramp_mask(img.size, 255, 0).point(lambda v: min(255, max(0, (v - 90) * 2)))
        )
    glow(img, (w * 0.2, h * 0.1), u * 0.7, mix(scene.sky[4], WHITE, 0.4), 0.25)


def _props(img: Image.Image, rng: random.Random, scene: Scene, cx, cy, pr, squash) -> None:  # type: ignore[no-untyped-def]
    w, h = img.size
    d = ImageDraw.Draw(img)
    side = rng.choice([-1, 1])
    fx = cx + side * pr * 1.3
    metal = mix((190, 190, 195), scene.sky[4], 0.2)
    for off in (0, pr * 0.18):  # knife and fork beside the plate
        d.rounded_rectangle(
            (
                fx + off - pr * 0.03,
                cy - pr * 0.8 * squash,
                fx + off + pr * 0.03,
                cy + pr * 0.8 * squash,
            ),
            pr * 0.03,
            fill=metal,
        )
    gx, gy = cx - side * pr * 1.25, cy - pr * 0.75 * squash
    gr = pr * 0.32
    if 0 < gx < w and 0 < gy < h:  # a cup
        d.ellipse(
            (gx - gr, gy - gr * squash, gx + gr, gy + gr * squash),
            fill=mix(scene.accent, WHITE, 0.55),
        )
        d.ellipse(
            (gx - gr * 0.78, gy - gr * 0.78 * squash, gx + gr * 0.78, gy + gr * 0.78 * squash),
            fill=adjust(scene.land[1], 0.7),
        )


SUBJECTS: dict[str, Callable[[Image.Image, Scene, random.Random], None]] = {
    "portrait": portrait,
    "animal": animal,
    "plate": plate,
    "creature": creature,
}
