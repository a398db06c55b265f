"""Prose for the templates source: varied sentence shapes, a/an, and the seams a reader notices."""

from __future__ import annotations

import random
import re

_PREPOSITIONS = (
    "at|in|on|of|with|under|over|by|from|into|through|beside|near|across|along|against|"
    "during|inside|behind|between|among|toward|towards|onto|for|to"
)
# "seen from across a lake", "reaching in to tear" are English; "at in the rain" is a seam.
_FINE_PAIRS = {("from", w) for w in ("across", "inside", "behind", "under", "beneath", "among",
                                     "between", "over", "along", "near", "beside")}  # fmt: skip
_FINE_PAIRS |= {("in", "to"), ("on", "to"), ("out", "of"), ("in", "between")}
_PILE_UP = re.compile(rf"\b({_PREPOSITIONS}) (?:the |a |an )?({_PREPOSITIONS})\b", re.IGNORECASE)
_DOUBLED = re.compile(r"\b(\w+)[\s,.;:]+\1\b", re.IGNORECASE)
# Sounds, not letters: "an hour", "a unicorn", "a one-eyed ...".
_AN_CONSONANT = ("hour", "honest", "honour", "heir", "8", "11", "18", "80")
_A_VOWEL = ("one", "once", "uni", "use", "usu", "euro", "eu", "ewe", "ukulele", "utopia")
_TIMES = {
    "morning": r"dawn|sunrise|first light|morning|daybreak",
    "day": r"noon|midday|afternoon|daylight|midday sun",
    "evening": r"dusk|sunset|twilight|evening|blue hour",
    "golden": r"golden hour|golden light",
    "night": r"night|midnight|moonlight|moonlit|starlit|starry",
}
_TIME_RES = {
    group: re.compile(rf"\b(?:{words})\b", re.IGNORECASE) for group, words in _TIMES.items()
}
_STUDIO = re.compile(r"\b(softbox|studio lighting|seamless backdrop|ring light)\b", re.IGNORECASE)
_OUTDOORS = re.compile(
    r"\b(harbour|harbor|beach|street|forest|mountain|field|garden|market|lake|sea|river|park|"
    r"rooftop|meadow|desert|shore|cliff|valley|village|jungle|savanna|tundra|coast)\b",
    re.IGNORECASE,
)
_GLUE = ("catch the eye", "fill the frame", "add texture", "complete the scene")

# Words that commonly trip renderers' safety filters, and tamer stand-ins ("" drops the word).
SOFTER = {
    "blood": "crimson", "bloody": "crimson", "bleeding": "crimson", "gore": "", "gory": "",
    "guts": "", "corpse": "statue", "corpses": "statues", "dead": "still", "death": "silence",
    "kill": "face", "killing": "facing", "killer": "hunter", "murder": "mystery",
    "weapon": "tool", "weapons": "tools", "gun": "lantern", "guns": "lanterns",
    "rifle": "walking stick", "pistol": "lantern", "knife": "spoon", "knives": "spoons",
    "sword": "staff", "swords": "staffs", "axe": "staff", "bomb": "lantern",
    "explosion": "burst of light", "war": "old", "battle": "journey", "battle-worn": "weathered",
    "wounds": "markings", "wound": "marking", "scar": "marking", "scars": "markings",
    "violent": "intense", "violence": "drama", "nude": "clothed", "naked": "clothed",
    "nudity": "", "sexy": "elegant", "sensual": "graceful", "lingerie": "summer dress",
    "bikini": "summer dress", "topless": "clothed", "horror": "mystery", "terrifying": "mysterious",
    "scary": "mysterious", "demon": "spirit", "demonic": "otherworldly", "skull": "stone mask",
    "skulls": "stone masks", "drugs": "herbs", "cigarette": "", "smoking": "",
    "fangs": "teeth", "burning": "glowing", "fire": "glow",
}  # fmt: skip
RISKY_RE = re.compile(r"\b(" + "|".join(map(re.escape, SOFTER)) + r")\b", re.IGNORECASE)


def fix_articles(text: str) -> str:
    """ "a artisan" -> "an artisan", "an castle" -> "a castle", keeping the capital."""

    def swap(match: re.Match[str]) -> str:
        article, word = match.group(1), match.group(2)
        low = word.lower()
        vowel = low[0] in "aeiou"
        if low.startswith(_AN_CONSONANT):
            vowel = True
        elif low.startswith(_A_VOWEL):
            vowel = False
        elif low[0].isdigit() or not low[0].isascii():
            return match.group(0)
        right = "an" if vowel else "a"
        if article[0].isupper():
            right = right.capitalize()
        return f"{right} {word}"

    return re.sub(r"\b([Aa]n?) ([\w-]+)", swap, text)


def time_groups(text: str) -> list[str]:
    """The times of day a text names, once per mention: ["night", "morning"]."""
    found = []
    for group, pattern in _TIME_RES.items():
        found += [group] * len(pattern.findall(text))
    return found


def seam(text: str) -> str | None:
    """What reads as machine-made in a description, or None when it reads clean."""
    for match in _PILE_UP.finditer(text):
        if (match.group(1).lower(), match.group(2).lower()) not in _FINE_PAIRS:
            return f"pile-up {match.group(0)!r}"
    match = _DOUBLED.search(text)
    if match and not match.group(1).isdigit():
        return f"doubled {match.group(0)!r}"
    tokens = re.findall(r"[\w'’-]+", text.lower())
    grams = [tuple(tokens[i : i + 4]) for i in range(len(tokens) - 3)]
    if len(set(grams)) < len(grams):
        return "repeated phrase"
    if re.search(r"\bmoody?\b.*\bmood\b", text, re.IGNORECASE):
        return "mood twice"
    groups = set(time_groups(text))
    if len(groups - {"golden"}) > 1 or ("golden" in groups and groups & {"day", "night"}):
        return f"times {sorted(groups)}"
    if _STUDIO.search(text) and _OUTDOORS.search(text):
        return "studio light outdoors"
    return None


def scene_seam(scene: str) -> str | None:
    """A scene naming a time twice ("a night shift at night") or two times at once."""
    if len(time_groups(scene)) > 1:
        return "two times in the scene"
    return seam(scene)


def sentence(text: str) -> str:
    """Tidy whitespace, a capital first letter and a full stop."""
    text = re.sub(r"\s+", " ", text).strip(" ,;")
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def _and_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _mood_phrase(rng: random.Random, mood: str) -> str:
    """A mood said once: "moody and intimate" never becomes "a moody and intimate mood"."""
    if not mood:
        return ""
    if "mood" in mood.lower():
        return f"a {mood} feel"
    return rng.choice((f"a {mood} mood", f"a {mood} feel", f"a {mood} atmosphere"))


def describe(
    rng: random.Random,
    scene: str,
    style: str,
    elements: list[str],
    mood: str,
    author: str,
    render_type: str = "",
) -> str:
    """One to three sentences in one of several shapes, so no batch reads as one template."""
    first = f"{scene}, in the {render_type} look" if render_type else scene
    detail = _and_list(elements) if elements else ""
    glue = rng.choice(_GLUE)
    feel = _mood_phrase(rng, mood)
    shapes = []
    # The classic: scene. style, with details. mood, author.
    with_detail = f"{style}, with {detail}" if detail else style
    shapes.append((first, with_detail, ", ".join(p for p in (feel, author) if p)))
    # The author opens: "In the spirit of Ansel Adams, a tidal island ..."
    if author:
        shapes.append(
            (
                f"{author}, {first}",
                f"{style}; {detail} {glue}" if detail else style,
                f"the whole scene feels {mood}" if mood else "",
            )
        )
        # Style and author in one breath, the mood closing the details.
        shapes.append(
            (
                f"{first}, {style}",
                f"{detail} {glue}, {author}" if detail else author,
                f"{mood.capitalize()} throughout" if mood else "",
            )
        )
    # Mood with the scene, details as their own sentence.
    shapes.append(
        (
            f"{first}, {mood} in feel" if mood else first,
            f"{detail} {glue}" if detail else "",
            f"{style}, {author}" if author else style,
        )
    )
    # The mood joins the scene; the author closes on their own.
    if author:
        shapes.append((f"{first}, with {feel}" if feel else first, with_detail, author))
    chosen = shapes[rng.randrange(len(shapes))]
    return fix_articles(" ".join(s for s in map(sentence, chosen) if s))
