"""Recognisable motifs for the offline renderer, chosen by the words of the prompt.

A fox is drawn as a fox, a portal as an arch of light and a loaf as a loaf: the subject the
prompt names first decides the motif, the seed decides where it stands and how big it is.
"""

from __future__ import annotations

import random
import re

from PIL import Image, ImageDraw

from imagebot.providers.local.canvas import blurred, vgradient
from imagebot.providers.local.style import Scene, adjust, mix

# Motif -> words that name it. The earliest word in the prompt wins: the subject comes first.
MOTIF_WORDS: dict[str, tuple[str, ...]] = {
    "fox": ("fox", "foxes", "vixen"),
    "hare": ("hare", "hares", "rabbit", "rabbits", "bunny", "bunnies"),
    "bird": ("bird", "birds", "owl", "owls", "robin", "sparrow", "eagle", "heron", "crow",
             "raven", "hummingbird", "kingfisher", "parrot", "penguin", "swan", "duck", "gull"),
    "fish": ("fish", "koi", "salmon", "trout", "goldfish", "carp", "shark", "tuna"),
    "horse": ("horse", "horses", "pony", "stallion", "mare", "foal", "unicorn"),
    "deer": ("deer", "stag", "doe", "fawn", "elk", "moose", "reindeer", "antelope"),
    "cat": ("cat", "cats", "kitten", "dog", "dogs", "puppy", "wolf", "lynx", "retriever",
            "lioness", "lion", "tiger", "leopard", "bear"),
    "portal": ("portal", "gate", "gateway", "arch", "archway", "doorway", "door", "torii"),
    "tower": ("tower", "towers", "lighthouse", "spire", "skyscraper", "minaret", "belfry"),
    "house": ("house", "houses", "cottage", "cabin", "barn", "townhouse", "townhouses",
              "building", "buildings", "church", "chapel", "temple", "museum", "library",
              "station", "bakery", "café", "cafe", "shop", "villa", "pavilion", "castle"),
    "soup": ("soup", "ramen", "broth", "stew", "pho", "curry", "chowder", "noodles"),
    "cake": ("cake", "cakes", "cupcake", "tart", "pie", "cheesecake", "gateau", "dessert"),
    "bread": ("bread", "loaf", "loaves", "baguette", "sourdough", "croissant", "bun", "brioche"),
    "tree": ("tree", "trees", "oak", "pine", "willow", "birch", "cherry", "maple", "bonsai"),
    "flower": ("flower", "flowers", "sunflower", "sunflowers", "rose", "roses", "tulip",
               "tulips", "poppy", "poppies", "lily", "daisy", "bouquet", "blossom", "lotus"),
    "boat": ("boat", "boats", "ship", "ships", "sailboat", "yacht", "canoe", "ferry",
             "gondola", "galleon", "trawler"),
    "car": ("car", "cars", "bus", "tram", "train", "truck", "van", "taxi", "bicycle", "tractor"),
    "person": ("woman", "man", "girl", "boy", "person", "people", "portrait", "face", "child",
               "sailor", "keeper", "chef", "baker", "dancer", "boxer", "nurse", "scholar",
               "violinist", "beekeeper", "sisters", "brothers", "grandmother", "grandfather"),
    "creature": ("monster", "creature", "demon", "beast", "dragon", "kaiju", "ghoul", "golem",
                 "leviathan", "wyrm", "troll", "hydra", "elemental"),
}  # fmt: skip
# Themes arrive in any language (issue 11.2): a few common words, so "Кот на крыше" is a cat.
OTHER_WORDS: dict[str, tuple[str, ...]] = {
    "cat": ("кот", "кота", "коту", "котом", "коты", "кошка", "кошки", "котёнок", "котенок",
            "собака", "пёс", "猫", "犬", "חתול", "כלב", "قطة", "قط", "كلب"),
    "fox": ("лиса", "лисы", "лис", "лисица", "狐", "שועל", "ثعلب"),
    "hare": ("заяц", "зайца", "кролик", "兎", "うさぎ", "ארנב", "أرنب"),
    "bird": ("птица", "птицы", "птичка", "鳥", "ציפור", "طائر", "عصفور"),
    "fish": ("рыба", "рыбы", "魚", "דג", "سمكة"),
    "horse": ("лошадь", "лошади", "конь", "馬", "סוס", "حصان"),
    "deer": ("олень", "оленя", "鹿", "צבי", "غزال"),
    "house": ("дом", "дома", "домик", "家", "בית", "بيت", "منزل"),
    "tower": ("башня", "маяк", "塔", "מגדל", "برج"),
    "tree": ("дерево", "деревья", "木", "עץ", "شجرة"),
    "flower": ("цветы", "цветок", "花", "פרח", "פרחים", "زهرة", "زهور"),
    "boat": ("лодка", "корабль", "船", "סירה", "قارب"),
}  # fmt: skip
_INDEX = {word: motif for motif, words in MOTIF_WORDS.items() for word in words}
_INDEX |= {word: motif for motif, words in OTHER_WORDS.items() for word in words}
_GLYPHS = {w: m for w, m in _INDEX.items() if len(w) == 1}  # CJK: words are not spaced
# Motifs the older painters draw well already, by the composition that paints them.
LEGACY = {"cat": "animal", "person": "portrait", "creature": "creature"}
DISHES = ("soup", "cake", "bread")


def choose_motif(prompt: str) -> str | None:
    """The motif the prompt names first ("fox", "portal", "soup", ...), or None."""
    for word in re.findall(r"\w+", (prompt or "").lower()):
        if word in _INDEX:
            return _INDEX[word]
        glyph = next((_GLYPHS[c] for c in word if c in _GLYPHS), None)
        if glyph:
            return glyph
    return None


def draw_motif(img: Image.Image, scene: Scene, rng: random.Random, motif: str) -> None:
    """Paint the background that suits `motif`, then the motif itself, placed by the seed."""
    w, h = img.size
    u = min(w, h)
    if motif in DISHES:
        _table(img, scene, rng)
        ground = h * rng.uniform(0.68, 0.8)
    else:
        from imagebot.providers.local.scenes import landscape

        if motif in ("boat", "fish"):
            scene.flags.add("water")
        horizon = landscape(img, scene, rng)
        ground = max(horizon + h * 0.08, h * rng.uniform(0.78, 0.9))
        if motif == "fish":
            ground = h * rng.uniform(0.55, 0.7)
    cx = w * rng.uniform(0.3, 0.7)
    size = u * rng.uniform(0.2, 0.3)
    facing = rng.choice((-1, 1))
    mask = Image.new("L", img.size, 0)
    d = ImageDraw.Draw(mask)
    from imagebot.providers.local.motif_shapes import PAINTERS

    colour, extra = PAINTERS[motif](d, cx, ground, size, facing, rng)
    colour = mix(colour, scene.land[2], 0.2)
    if motif not in ("fish", "boat"):
        shadow = Image.new("L", img.size, 0)
        ImageDraw.Draw(shadow).ellipse(
            (cx - size * 1.1, ground - size * 0.08, cx + size * 1.1, ground + size * 0.1), fill=120
        )
        img.paste((20, 16, 14), (0, 0), blurred(shadow, u / 60))
    fill = vgradient(img.size, [adjust(colour, 1.25), colour, adjust(colour, 0.65)])
    img.paste(fill, (0, 0), blurred(mask, u / 500))
    extra(img, scene)


def _table(img: Image.Image, scene: Scene, rng: random.Random) -> None:
    from imagebot.providers.local.subjects import backdrop

    w, h = img.size
    backdrop(img, scene, rng, blur=22)
    top = int(h * rng.uniform(0.42, 0.66))
    # Oak, walnut, slate, marble or linen: each seed sets the table differently.
    surfaces = ((122, 74, 42), (70, 42, 28), (62, 66, 72), (214, 208, 200), (190, 170, 140))
    wood = mix(rng.choice(surfaces), scene.land[1], 0.25)
    img.paste(vgradient((w, h - top), [adjust(wood, 1.2), wood, adjust(wood, 0.6)]), (0, top))
