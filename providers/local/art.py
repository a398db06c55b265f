"""The offline painter: picks a scene for the prompt and role, paints it, gives it a finish."""

from __future__ import annotations

import io
import math
import random

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageOps

from imagebot.providers.local.canvas import noise, radial
from imagebot.providers.local.style import Scene, read_scene, seed_rng

# Pixels painted before the upscale; soft photographic scenes survive a 2x upscale well,
# hard-edged ones (flat, 3D, pixel) are painted closer to the final size.
WORK_AREA = {"photo": 560 * 560, "dark": 560 * 560, "glow": 600 * 600, "painterly": 500 * 500,
             "flat": 900 * 900, "render": 760 * 760, "pixel": 512 * 512}  # fmt: skip


def work_size(width: int, height: int, finish: str) -> tuple[int, int]:
    """The size painted before upscaling: the target's aspect, at most WORK_AREA pixels."""
    # big outputs get more painted detail, but never more than ~1.5 MP of Python drawing
    area = max(WORK_AREA.get(finish, 560 * 560), min(1_500_000, width * height // 9))
    scale = min(1.0, math.sqrt(area / (width * height)))
    return max(16, round(width * scale)), max(16, round(height * scale))


def paint(prompt: str, role: str, width: int, height: int, seed: int) -> Image.Image:
    """A finished RGB image of exactly width x height for this prompt, role and seed."""
    rng = seed_rng(prompt, role, seed)
    scene = read_scene(prompt, role, rng)
    size = work_size(width, height, scene.finish)
    img = Image.new("RGB", size, scene.sky[2])
    compose(img, scene, rng)
    if scene.finish == "painterly":
        img = strokes(img, rng)
    if scene.finish == "glow":
        img = bloom(img, 0.35)
    img = grade(img, scene)
    if rng.random() < 0.5:  # seeds differ in composition too: half of them are mirrored
        img = ImageOps.mirror(img)
    if scene.finish == "pixel":
        return pixelate(img, width, height, scene, rng)
    if img.size != (width, height):
        img = img.resize((width, height), Image.Resampling.BICUBIC)
    return finish(img, scene, rng)


def compose(img: Image.Image, scene: Scene, rng: random.Random) -> None:
    """Paint the scene's composition onto `img` at working size."""
    from imagebot.providers.local import objects, scenes, subjects, worlds

    if scene.composition == "motif":
        from imagebot.providers.local.motifs import draw_motif

        draw_motif(img, scene, rng, scene.motif)
    elif scene.composition == "underwater":
        worlds.underwater(img, scene, rng)
    elif scene.composition in subjects.SUBJECTS:
        subjects.SUBJECTS[scene.composition](img, scene, rng)
    elif scene.composition == "objects":
        objects.objects(img, scene, rng)
    elif scene.composition == "pattern":
        objects.pattern(img, scene, rng)
    else:
        scenes.landscape(img, scene, rng)


def bloom(img: Image.Image, amount: float) -> Image.Image:
    """Bright areas bleed light: screen a blurred copy of the highlights back on."""
    bright = img.point(lambda v: max(0, v - 150) * 2)
    halo = bright.filter(ImageFilter.GaussianBlur(min(img.size) / 30))
    return Image.blend(img, ImageChops.screen(img, halo), amount * 2)


def grade(img: Image.Image, scene: Scene) -> Image.Image:
    """Monochrome or sepia when the prompt asks for it."""
    if scene.grade == "mono":
        return ImageOps.autocontrast(ImageOps.grayscale(img), cutoff=1).convert("RGB")
    if scene.grade == "sepia":
        grey = ImageOps.autocontrast(ImageOps.grayscale(img), cutoff=1)
        return ImageOps.colorize(
            grey, black=(38, 24, 14), white=(246, 230, 200), mid=(150, 110, 72)
        )
    return img


def strokes(img: Image.Image, rng: random.Random) -> Image.Image:
    """Repaint the image as short oriented brush strokes sampled from it."""
    w, h = img.size
    out = img.copy()  # strokes cover nearly all of it; gaps show the painting beneath
    draw = ImageDraw.Draw(out)
    px = img.load()
    unit = max(3.0, min(w, h) / 80)
    angle0 = rng.uniform(0, math.pi)
    rand = rng.random
    for layer, scale in ((0, 2.4), (1, 1.4)):
        step = unit * scale * 0.9
        width = max(1, int(unit * scale * 0.75))
        cols, rows = int(w / step) + 1, int(h / step) + 1
        for k in range(cols * rows):
            x = (k % cols + rand() - 0.5) * step
            y = (k // cols + rand() - 0.5) * step
            c = px[min(w - 1, max(0, int(x))), min(h - 1, max(0, int(y)))]
            j = int(rand() * 20) - 10
            a = angle0 + math.sin(x / w * 5 + layer) * 0.8 + math.cos(y / h * 4) * 0.6
            half = unit * scale * (0.45 + 0.4 * rand())
            dx, dy = math.cos(a) * half, math.sin(a) * half
            draw.line(
                (x - dx, y - dy, x + dx, y + dy), fill=(c[0] + j, c[1] + j, c[2] + j), width=width
            )
    weave = noise(rng, (w // 2 + 1, h // 2 + 1)).resize((w, h), Image.Resampling.BILINEAR)
    emboss = weave.filter(ImageFilter.EMBOSS).point(lambda v: 128 + (v - 128) // 5)
    return ImageChops.overlay(out, Image.merge("RGB", (emboss, emboss, emboss)))


def pixelate(img: Image.Image, width: int, height: int, scene: Scene, rng) -> Image.Image:  # type: ignore[no-untyped-def]
    """Down to a coarse pixel grid in a limited palette, then up with hard edges."""
    cell = max(2, round(min(width, height) / rng.choice([96, 128, 160])))
    small = img.resize((max(1, width // cell), max(1, height // cell)), Image.Resampling.BOX)
    small = small.quantize(colors=rng.choice([16, 24, 32]), dither=Image.Dither.NONE).convert("RGB")
    return small.resize((width, height), Image.Resampling.NEAREST)


def finish(img: Image.Image, scene: Scene, rng: random.Random) -> Image.Image:
    """Lens and film: vignette and grain for photos, a light touch for the rest."""
    strength = {"photo": (0.35, 14), "dark": (0.6, 18), "glow": (0.3, 8), "painterly": (0.25, 0),
                "render": (0.18, 0), "flat": (0.0, 5)}.get(scene.finish, (0.3, 10))  # fmt: skip
    vignette, grain = strength
    if vignette:
        img = vignetted(img, vignette)
    if grain:
        img = grained(img, rng, grain)
    return img


def vignetted(img: Image.Image, amount: float) -> Image.Image:
    """Darken the corners."""
    w, h = img.size
    light = radial((int(w * 1.5), int(h * 1.5)), 0.7).crop(
        (int(w * 0.25), int(h * 0.25), int(w * 0.25) + w, int(h * 0.25) + h)
    )
    floor = int(255 * (1 - amount))
    light = light.point(lambda v: floor + (255 - floor) * min(255, v * 2) // 255)
    return ImageChops.multiply(img, Image.merge("RGB", (light, light, light)))


def grained(img: Image.Image, rng: random.Random, amount: int) -> Image.Image:
    """Monochrome film grain; clumped in 2x2 cells on big images (and it keeps PNGs small)."""
    w, h = img.size
    clump = 1 if min(w, h) < 700 else 2 if min(w, h) < 2000 else 3
    tile = (min(w, 768) // clump + 1, min(h, 768) // clump + 1)
    grain = noise(rng, tile).point(lambda v: v * amount // 255)
    grain = grain.resize((tile[0] * clump, tile[1] * clump), Image.Resampling.NEAREST)
    if grain.size[0] < w or grain.size[1] < h:  # tile it: a repeat of random grain is invisible
        full = Image.new("L", (w, h))
        for y in range(0, h, grain.size[1]):
            for x in range(0, w, grain.size[0]):
                full.paste(grain, (x, y))
        grain = full
    grain = grain.crop((0, 0, w, h))
    return ImageChops.add(img, Image.merge("RGB", (grain, grain, grain)), 1.0, -(amount // 2))


def png_bytes(img: Image.Image) -> bytes:
    """PNG-encode quickly (level 1: grain does not compress anyway)."""
    buf = io.BytesIO()
    img.save(buf, "PNG", compress_level=1)
    return buf.getvalue()
