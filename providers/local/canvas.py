"""Drawing primitives for the offline renderer: gradients, glows, masks, ridges, particles."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from PIL import Image, ImageChops, ImageDraw, ImageFilter

from imagebot.providers.local.style import RGB, mix

Point = tuple[float, float]


def column(height: int, stops: Sequence[RGB], at: Sequence[float] | None = None) -> list[RGB]:
    """`height` colours running through `stops` (placed at fractions `at`, evenly by default)."""
    at = list(at) if at else [i / (len(stops) - 1) for i in range(len(stops))]
    out = []
    j = 0
    for y in range(height):
        f = y / max(1, height - 1)
        while j < len(at) - 2 and f > at[j + 1]:
            j += 1
        span = max(1e-6, at[j + 1] - at[j])
        t = min(1.0, max(0.0, (f - at[j]) / span))
        t = t * t * (3 - 2 * t)  # smoothstep: no visible kinks at the stops
        out.append(mix(stops[j], stops[j + 1], t))
    return out


def vgradient(
    size: tuple[int, int], stops: Sequence[RGB], at: Sequence[float] | None = None
) -> Image.Image:
    """A vertical RGB gradient of `size`."""
    w, h = size
    strip = Image.new("RGB", (1, h))
    strip.putdata(column(h, stops, at))
    return strip.resize((w, h), Image.Resampling.NEAREST)


def ramp_mask(
    size: tuple[int, int], top: int, bottom: int, horizontal: bool = False
) -> Image.Image:
    """An L mask fading linearly from `top` (first row) to `bottom` (last row) values."""
    w, h = size
    n = w if horizontal else h
    strip = Image.new("L", (n, 1) if horizontal else (1, n))
    strip.putdata([int(top + (bottom - top) * i / max(1, n - 1)) for i in range(n)])
    return strip.resize((w, h), Image.Resampling.BILINEAR)


_RADIAL: Image.Image | None = None


def radial(size: tuple[int, int], power: float = 1.0, strength: float = 1.0) -> Image.Image:
    """An L mask bright in the centre of an ellipse of `size`, zero at its edge."""
    global _RADIAL
    if _RADIAL is None:
        _RADIAL = Image.radial_gradient("L").point(lambda v: 255 - v)
    table = [int(255 * strength * (v / 255) ** power) for v in range(256)]
    w, h = max(1, int(size[0])), max(1, int(size[1]))
    return _RADIAL.point(table).resize((w, h), Image.Resampling.BILINEAR)


def glow(
    img: Image.Image, centre: Point, radius: float, colour: RGB, strength: float = 1.0, power=2.0
) -> None:
    """Blend a soft round glow of `colour` into `img`."""
    r = int(radius)
    if r < 1:
        return
    mask = radial((2 * r, 2 * r), power, strength)
    img.paste(colour, (int(centre[0]) - r, int(centre[1]) - r), mask)


def screen_glow(img: Image.Image, centre: Point, radius: float, colour: RGB, power=2.0) -> None:
    """Add light (screen blend) in a soft disc: brightens without greying."""
    r = int(radius)
    if r < 1:
        return
    box = (int(centre[0]) - r, int(centre[1]) - r, int(centre[0]) + r, int(centre[1]) + r)
    region = img.crop(box)
    light = Image.new("RGB", region.size, colour)
    black = Image.new("RGB", region.size, (0, 0, 0))
    lit = ImageChops.screen(region, Image.composite(light, black, radial(region.size, power)))
    img.paste(lit, box[:2])


def ridge(
    rng: random.Random, width: int, base: float, amp: float, rough: float, steps: int = 7
) -> list[Point]:
    """A ridge line by midpoint displacement: `base` mean height, `rough` keeps detail."""
    n = 2**steps
    ys = [0.0] * (n + 1)
    ys[0], ys[n] = rng.uniform(-amp, amp), rng.uniform(-amp, amp)
    step, scale = n, amp
    while step > 1:
        half = step // 2
        for i in range(half, n, step):
            ys[i] = (ys[i - half] + ys[i + half]) / 2 + rng.uniform(-scale, scale)
        step, scale = half, scale * rough
    return [(width * i / n, base + y) for i, y in enumerate(ys)]


def smooth_line(
    rng: random.Random, width: int, base: float, amp: float, waves: int = 3, n: int = 96
) -> list[Point]:
    """A gently rolling line made of a few sine waves (hills, dunes)."""
    parts = [(rng.uniform(0.5, 1.0) * amp / (k + 1), rng.uniform(0.6, 1.4) * (k + 1), rng.random())
             for k in range(waves)]  # fmt: skip
    return [
        (
            width * i / n,
            base + sum(a * math.sin(2 * math.pi * (f * i / n + p)) for a, f, p in parts),
        )
        for i in range(n + 1)
    ]


def fill_below(
    img: Image.Image, line: list[Point], fill: RGB | Image.Image, bottom: float | None = None
) -> Image.Image:
    """Paint the area under `line` with a colour or an image; returns the mask used."""
    w, h = img.size
    mask = Image.new("L", img.size, 0)
    floor = h + 2 if bottom is None else bottom
    ImageDraw.Draw(mask).polygon([*line, (w + 2, floor), (-2, floor)], fill=255)
    mask = mask.filter(ImageFilter.BoxBlur(0.7))  # antialiased edges survive the upscale
    img.paste(fill, (0, 0), mask)
    return mask


def blurred(mask: Image.Image, radius: float) -> Image.Image:
    """Gaussian blur (radius in pixels, clamped at 0)."""
    return mask.filter(ImageFilter.GaussianBlur(radius)) if radius > 0 else mask


def stars(img: Image.Image, rng: random.Random, count: int, limit_y: float, colour: RGB) -> None:
    """Scatter stars (a few with a glow) over the top `limit_y` pixels."""
    draw = ImageDraw.Draw(img)
    w = img.size[0]
    for _ in range(count):
        x, y = rng.uniform(0, w), rng.uniform(0, limit_y) ** 1.15 / max(1, limit_y) ** 0.15
        base = img.getpixel((int(min(w - 1, x)), int(min(limit_y - 1, y))))
        c = mix(base, colour, rng.uniform(0.35, 1.0) * (1 - 0.6 * y / max(1, limit_y)))
        if rng.random() < 0.04:
            glow(img, (x, y), rng.uniform(3, 7), colour, 0.7)
        draw.point((x, y), fill=c)


def particles(
    img: Image.Image, rng: random.Random, count: int, colour: RGB, size: tuple[float, float],
    alpha: int = 200, blur: float = 0.6, region: tuple[float, float, float, float] | None = None,
) -> None:  # fmt: skip
    """Soft round particles (snow, embers, dust, bubbles) of `colour`."""
    w, h = img.size
    x0, y0, x1, y1 = region or (0, 0, w, h)
    mask = Image.new("L", img.size, 0)
    draw = ImageDraw.Draw(mask)
    for _ in range(count):
        x, y, r = rng.uniform(x0, x1), rng.uniform(y0, y1), rng.uniform(*size)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=int(alpha * rng.uniform(0.4, 1.0)))
    img.paste(colour, (0, 0), blurred(mask, blur))


def noise(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    """Uniform L noise fixed by `rng` (Image.effect_noise is not seedable)."""
    return Image.frombytes("L", size, rng.randbytes(size[0] * size[1]))


def reflect(img: Image.Image, horizon: int, tint: RGB, rng: random.Random, amount=0.4) -> None:
    """Mirror everything above `horizon` into water below it, smeared and rippled."""
    w, h = img.size
    depth = h - horizon
    if depth < 4:
        return
    src = img.crop((0, max(0, horizon - depth), w, horizon)).transpose(
        Image.Transpose.FLIP_TOP_BOTTOM
    )
    src = src.resize((w, depth), Image.Resampling.BILINEAR)
    # squash then stretch vertically: a vertical-only blur, like light on moving water
    src = src.resize((w, max(2, depth // 10)), Image.Resampling.BILINEAR).resize(
        (w, depth), Image.Resampling.BICUBIC
    )
    src = Image.blend(src, Image.new("RGB", src.size, tint), amount)
    darken = ramp_mask(src.size, 30, 150)
    src.paste(mix(tint, (0, 0, 0), 0.5), (0, 0), darken)
    ripples = Image.new("L", src.size, 0)
    draw = ImageDraw.Draw(ripples)
    for _ in range(int(depth * 0.8)):
        y = rng.uniform(0, 1) ** 1.8 * depth
        x = rng.uniform(-0.1, 1.0) * w
        length = rng.uniform(0.02, 0.1) * w * (0.3 + y / depth)
        draw.line((x, y, x + length, y), fill=rng.randint(30, 90), width=1 if y < depth / 3 else 2)
    src.paste(mix(tint, (255, 255, 255), 0.3), (0, 0), ripples)
    img.paste(src.filter(ImageFilter.GaussianBlur(0.6)), (0, horizon))


def rim_light(
    img: Image.Image, mask: Image.Image, fill: RGB | Image.Image, light: RGB, side: float
) -> None:
    """Paste a silhouette, then light its edge from `side` (-1 left, 1 right)."""
    w, h = img.size
    img.paste(fill, (0, 0), mask)
    shift = int(side * min(w, h) * 0.012)
    inner = ImageChops.offset(mask, -shift, int(min(w, h) * 0.006))
    edge = ImageChops.subtract(mask, inner).filter(ImageFilter.GaussianBlur(min(w, h) / 300))
    halo = mask.filter(ImageFilter.GaussianBlur(min(w, h) / 40)).point(lambda v: v // 3)
    outside = ImageChops.subtract(halo, mask)
    img.paste(light, (0, 0), outside)
    img.paste(light, (0, 0), edge)
