"""Reads a prompt and a role into a Scene: what the offline renderer paints, in which colours."""

from __future__ import annotations

import colorsys
import hashlib
import random
import re
from dataclasses import dataclass, field

from imagebot.providers.local.palette import COLOURS, LANDS, SKIES, WORDS

RGB = tuple[int, int, int]

# Role-id words -> (composition, finish, does the prompt pick the composition?).
ROLE_HINTS: list[tuple[tuple[str, ...], tuple[str, str, bool]]] = [
    (("pixel", "8bit", "retro-game", "sprite"), ("landscape", "pixel", True)),
    (("monster", "creature", "horror", "creepy"), ("creature", "dark", False)),
    (("food", "culinary", "chef"), ("plate", "photo", False)),
    (("people", "portrait", "fashion", "wedding"), ("portrait", "photo", False)),
    (("animal", "wildlife", "pet", "nature-photo"), ("animal", "photo", False)),
    (("landscape", "travel", "nature", "drone"), ("landscape", "photo", False)),
    (("3d", "render", "octane", "clay", "isometric", "voxel"), ("objects", "render", True)),
    (("illustrat", "2d", "comic", "anime", "cartoon", "vector", "flat"), ("pattern", "flat", True)),
    (("paint", "watercolo", "oil", "impressionis"), ("landscape", "painterly", True)),
    (("fantasy", "myth", "epic"), ("landscape", "glow", True)),
    (("architect", "street", "urban", "city"), ("landscape", "photo", True)),
    (("space", "sci-fi", "scifi", "astro"), ("landscape", "glow", True)),
    (("photo",), ("landscape", "photo", True)),
]
SUBJECT_COMPOSITIONS = ("creature", "animal", "plate", "portrait")


@dataclass
class Scene:
    """Everything the painters need: layout, time, setting, colour ramps, flags."""

    composition: str  # landscape, portrait, plate, animal, creature, objects, pattern, underwater
    finish: str  # photo, painterly, pixel, flat, render, dark, glow
    time: str  # day, golden, sunset, dawn, night
    setting: str  # hills, mountain, ocean, lake, forest, desert, city, snow, space
    sky: list[RGB]
    land: list[RGB]
    accent: RGB
    flags: set[str] = field(default_factory=set)  # fog, snow, storm, castle, islands, ...
    grade: str = ""  # mono or sepia: applied to the finished image
    thirds: bool = False  # rule-of-thirds framing instead of centred
    motif: str = ""  # what the prompt names first: fox, portal, soup, ... (see motifs.py)


def hex_rgb(text: str) -> RGB:
    """'#a1b2c3' as an (r, g, b) tuple."""
    text = text.lstrip("#")
    return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)


def mix(a: RGB, b: RGB, t: float) -> RGB:
    """Linear blend of two colours, t=0 gives a."""
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def adjust(c: RGB, light: float = 1.0, sat: float = 1.0, hue: float = 0.0) -> RGB:
    """Scale a colour's lightness and saturation, rotate its hue (turns)."""
    h, lum, s = colorsys.rgb_to_hls(*(v / 255 for v in c))
    r, g, b = colorsys.hls_to_rgb((h + hue) % 1.0, min(1.0, lum * light), min(1.0, s * sat))
    return int(r * 255), int(g * 255), int(b * 255)


def ramp_from(colour: RGB) -> list[RGB]:
    """Five shades of one colour, dark to light, shadows cooled and lights warmed like a painter."""
    h, _, s = colorsys.rgb_to_hls(*(v / 255 for v in colour))
    out = []
    for lum, shift in ((0.1, 0.02), (0.25, 0.01), (0.45, 0.0), (0.66, -0.01), (0.86, -0.02)):
        r, g, b = colorsys.hls_to_rgb((h + shift) % 1.0, lum, s * (0.85 if lum > 0.8 else 1.0))
        out.append((int(r * 255), int(g * 255), int(b * 255)))
    return out


def _luma(c: RGB) -> float:
    return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]


def ramp_of(colours: list[RGB]) -> list[RGB]:
    """Five colours dark to light spread over a list of palette colours."""
    ordered = sorted(colours, key=_luma)
    if len(ordered) == 1:
        return ramp_from(ordered[0])
    out = []
    for i in range(5):
        pos = i / 4 * (len(ordered) - 1)
        lo = int(pos)
        hi = min(lo + 1, len(ordered) - 1)
        out.append(mix(ordered[lo], ordered[hi], pos - lo))
    return out


def blend_ramps(a: list[RGB], b: list[RGB], t: float) -> list[RGB]:
    """Mix two ramps stop by stop."""
    return [mix(x, y, t) for x, y in zip(a, b, strict=True)]


def seed_rng(prompt: str, role: str, seed: int, salt: str = "") -> random.Random:
    """A random source fixed by prompt, role and seed (stable across processes)."""
    digest = hashlib.sha256(f"{salt}|{role}|{seed}|{prompt}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _role_look(role: str) -> dict:
    try:  # roles are data a user edits: a missing or broken one must not stop a render
        from imagebot.providers.roles import get_role

        look = get_role(role).look
        return look if isinstance(look, dict) else {}
    except Exception:
        return {}


def _has(words: set[str], key: str) -> bool:
    return any(w in words for w in WORDS[key])


def read_scene(prompt: str, role: str, rng: random.Random) -> Scene:
    """Decide composition, time, setting and colours from the prompt, the role and the seed."""
    words = set(re.findall(r"[a-z0-9]+", (prompt or "").lower()))
    role_key = (role or "").lower()
    look = _role_look(role) if role else {}
    hint = ("landscape", "photo", True)
    for keys, value in ROLE_HINTS:
        if any(k in role_key for k in keys):
            hint = value
            break
    composition, finish, prompt_decides = hint
    framing = f"{look.get('composition', '')} {look.get('mood', '')}".lower()
    if prompt_decides or not role_key:
        for key in SUBJECT_COMPOSITIONS:
            if _has(words, key):
                composition = key
                break
    from imagebot.providers.local.motifs import LEGACY, choose_motif

    motif = choose_motif(prompt) or ""
    if motif in LEGACY:
        composition = LEGACY[motif]
    elif motif:
        composition = "motif"
    if _has(words, "underwater") and composition in ("landscape", "pattern"):
        composition = "underwater"
    if composition == "pattern" and (
        _has(words, "mountain") or _has(words, "forest") or _has(words, "ocean")
    ):
        composition = "landscape"
    flags = {k for k in ("fog", "snow", "storm", "castle", "islands", "lake") if _has(words, k)}
    flags |= {k for k in ("pastel", "neon", "vibrant", "dark") if _has(words, k) or k in framing}

    times = [t for t in ("night", "sunset", "dawn", "golden", "day") if _has(words, t)]
    time = times[0] if times else rng.choice(["day", "golden", "sunset", "dawn", "day", "night"])
    if "storm" in flags and not times:
        time = "day"
    settings = [
        s
        for s in ("space", "city", "ocean", "desert", "forest", "mountain", "snow", "autumn")
        if _has(words, s)
    ]
    setting = settings[0] if settings else rng.choice(["mountain", "hills", "lake", "forest"])
    if setting == "autumn":
        setting = "forest"
        flags.add("autumn")
    if setting == "snow":
        setting = "mountain"
        flags.add("snow")
    if "lake" in flags and setting in ("mountain", "hills", "forest", "city"):
        flags.add("water")
    if setting == "ocean" or (not settings and setting == "lake"):
        flags.add("water")

    sky_key = "storm" if "storm" in flags and time == "day" else time
    sky = [hex_rgb(c) for c in SKIES[sky_key]]
    land_key = "autumn" if "autumn" in flags else "snow" if "snow" in flags else setting
    if _has(words, "spring") and land_key in ("hills", "forest", "mountain"):
        land_key = "spring"
    land = [hex_rgb(c) for c in LANDS.get(land_key, LANDS["hills"])]
    if setting == "space" or composition == "underwater" or "neon" in flags:
        sky = [
            hex_rgb(c)
            for c in SKIES[
                "space"
                if setting == "space"
                else "underwater"
                if composition == "underwater"
                else "neon"
            ]
        ]
    if setting == "city" and "neon" in flags:
        land = [hex_rgb(c) for c in LANDS["city"]]

    role_palette = [hex_rgb(c) for c in look.get("palette", []) if isinstance(c, str)]
    accent = max(sky + land, key=lambda c: colorsys.rgb_to_hls(*(v / 255 for v in c))[2])
    if role_palette:
        role_ramp = ramp_of(role_palette)
        land = blend_ramps(land, role_ramp, 0.45 if settings else 0.6)
        if not times and not settings:
            sky = blend_ramps(sky, role_ramp, 0.3)
        accent = max(role_palette, key=lambda c: colorsys.rgb_to_hls(*(v / 255 for v in c))[2])

    named = [hex_rgb(COLOURS[w]) for w in re.findall(r"[a-z]+", prompt.lower()) if w in COLOURS]
    if named:
        sky = blend_ramps(sky, ramp_from(named[0]), 0.65)
        second = named[1] if len(named) > 1 else named[0]
        land = blend_ramps(land, ramp_from(second), 0.5)
        accent = adjust(named[-1], 1.15, 1.2)

    sky, land, accent = _apply_mods(sky, land, accent, flags)
    # Each seed its own palette: a small hue turn and light change, so a batch is not one picture.
    turn, light = rng.uniform(-0.07, 0.07), rng.uniform(0.85, 1.15)
    sky = [adjust(c, light, 1.0, turn) for c in sky]
    land = [adjust(c, light, 1.0, turn) for c in land]
    # "neon noir" is neon colour on black, not grey.
    monochrome = _has(words, "mono") or words >= {"black", "white"}
    grade = "mono" if monochrome and "neon" not in flags else ""
    grade = "sepia" if _has(words, "sepia") else grade
    return Scene(
        composition=composition,
        finish=finish,
        time=time,
        setting=setting,
        sky=sky,
        land=land,
        accent=accent,
        flags=flags,
        grade=grade,
        thirds="third" in framing or rng.random() < 0.3,
        motif=motif,
    )


def _apply_mods(
    sky: list[RGB], land: list[RGB], accent: RGB, flags: set[str]
) -> tuple[list[RGB], list[RGB], RGB]:
    def each(fn):  # type: ignore[no-untyped-def]
        return [fn(c) for c in sky], [fn(c) for c in land], fn(accent)

    if "pastel" in flags:
        sky, land, accent = each(lambda c: mix(adjust(c, 1.0, 0.7), (250, 246, 250), 0.45))
    if "neon" in flags:
        sky, land, _ = each(lambda c: adjust(c, 0.85, 1.5))
        accent = adjust(accent, 1.1, 2.0)
    if "vibrant" in flags:
        sky, land, accent = each(lambda c: adjust(c, 1.0, 1.45))
    if "fog" in flags:
        sky, land, accent = each(lambda c: mix(adjust(c, 1.05, 0.75), (200, 205, 210), 0.2))
    if "snow" in flags:
        sky = [mix(c, (236, 242, 248), 0.35) for c in sky]
    if "dark" in flags:
        sky, land, _ = each(lambda c: adjust(c, 0.7, 0.9))
    return sky, land, accent
