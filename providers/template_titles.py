"""Titles, tags and tidy text for the offline prompt source (templates.py).

A title names the scene's subject (its "core", the words before a place or an action) with a
mood or a frame around it; tags are short lowercase phrases drawn from the picks.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from imagebot.providers.prompt_text import fix_articles
from imagebot.providers.roles import Role, expand_text

# Framing words before " of " that are not the subject ("close-up of", "a poster of").
_FRAMES = (
    r"close-up|view|shot|portrait|page|spread|poster|screen(?:shot)?|study|detail|interior|"
    r"glimpse|moment|flat lay|lay|featuring|sketch"
)
# Mid-scene a frame word needs its "of" ("a hero shot in its habitat" is not a frame).
_FRAME_RE = re.compile(
    rf"^(?:(?:a |an |the )?(?:{_FRAMES})\b(?: of| featuring)?"
    rf"|.*?\b(?:{_FRAMES})\b(?: of| featuring))\s+",
    re.IGNORECASE,
)
_CUT_RE = re.compile(
    r",|:|\b(?:in|on|at|with|beside|under|beneath|above|over|against|through|into|from|as|"
    r"between|among|around|near|by|across|along|towards?|behind|inside|below|to|for|after|"
    r"down|up|past|beyond|off|the size|"
    r"framed|surrounded|seen|served|while|that|who|whose|lit|full|half|hidden|made|carved|"
    r"covered|crowded|overgrown|filled|draped|dotted|patterned|silhouetted|set|deep)\b(?!-)|"
    r"\band (?:a|an|the|her|his|its|their)\b|"
    r"\b(?!(?:morning|evening|king|ring|wing|spring|building|painting|string|thing|ceiling)\b)"
    r"\w{3,}ing\b",
    re.IGNORECASE,
)
_CONTAINERS = {
    "bowl", "plate", "tray", "stack", "slice", "wedge", "glass", "cup", "pot", "basket", "board",
    "spread", "platter", "jar", "tower", "scoop", "pan", "tangle", "loaf", "pair", "herd", "flock",
    "family", "pod", "row", "field", "line", "group", "cluster", "kind",
}  # fmt: skip
_DANGLING = {
    "of", "and", "a", "an", "the", "her", "his", "with", "in", "on", "at", "for", "to", "by",
}  # fmt: skip
_ARTICLES = {"a", "an", "the", "some", "two", "three", "its", "their"}
_WHEN = (
    ("golden hour", "Golden Hour"), ("blue hour", "Blue Hour"), ("dawn", "Dawn"),
    ("sunrise", "Sunrise"), ("first light", "First Light"), ("dusk", "Dusk"),
    ("sunset", "Sunset"), ("twilight", "Twilight"), ("midnight", "Midnight"), ("night", "Night"),
    ("noon", "Noon"), ("midday", "Noon"),
)  # fmt: skip
_WEATHER = (
    ("candle", "Candlelight"), ("rain", "the Rain"), ("fog", "the Fog"), ("mist", "the Mist"),
    ("snow", "the Snow"), ("moon", "Moonlight"), ("window", "Window Light"), ("storm", "the Storm"),
    ("neon", "Neon"), ("aurora", "Aurora Light"), ("frost", "Frost"),
)  # fmt: skip
_ADJECTIVES = (
    "Quiet", "Golden", "Hidden", "Little", "Patient", "Last", "Small", "Wandering", "Gentle",
    "Lonely", "Bright", "Secret", "Slow", "Distant", "Restless", "Tender", "Silent", "Wild",
    "Faraway", "Borrowed", "Shining", "Hushed", "Curious", "Bold", "Velvet", "Amber", "Vivid",
)  # fmt: skip
# Mood words that contradict each other; a drawn mood must not fight the light and style.
_BRIGHT = {
    "bright", "joyful", "airy", "high-key", "playful", "sunny", "cheerful", "pastel", "warm",
    "inviting", "hopeful",
}  # fmt: skip
_DARK = {"dark", "moody", "dramatic", "melancholic", "mysterious", "tense", "low-key", "noir"}
_CODAS = (
    "Unhurried", "Remembered", "Up Close", "in Passing", "After Hours", "at Rest", "Alone",
    "Again", "Undisturbed", "in Detail", "Found", "Revisited",
)  # fmt: skip
_FRAMES_AROUND = ("Ode to {}", "Notes on {}", "A Study of {}", "Letters from {}", "{} in Focus")
# Small words a theme in another language may end on ("на", "в", "の"): never a title's last.
_DANGLING_OTHER = {"на", "в", "во", "и", "с", "со", "у", "к", "по", "о", "об", "из", "за", "под",
                   "над", "от", "до", "для", "de", "la", "le", "el", "en", "et", "y", "di", "der",
                   "die", "das", "und", "im", "am", "zu", "על", "ב", "في", "على"}  # fmt: skip
_THEME_WORDS, _THEME_CHARS = 7, 44


def _titlecase(text: str) -> str:
    small = {"a", "an", "the", "of", "and", "in", "on", "at", "with", "to", "for"}
    words = text.split()
    # Only Latin script is title-cased: "Кот на крыше" keeps its own capitals.
    return " ".join(
        w
        if (i and w.lower() in small) or w[:1].isupper() or not w[:1].isascii()
        else w[:1].upper() + w[1:]
        for i, w in enumerate(words)
    )


def _theme_core(theme: str) -> str:
    """The user's theme, whole when short; a long one ends at a phrase boundary, not mid-phrase."""
    words = _strip_articles(theme.split()) or theme.split()
    if len(words) <= _THEME_WORDS and len(" ".join(words)) <= _THEME_CHARS:
        return " ".join(words)
    best = words[:1]
    for end in range(2, len(words) + 1):
        piece = words[:end]
        if len(piece) > _THEME_WORDS or len(" ".join(piece)) > _THEME_CHARS:
            break
        after = words[end] if end < len(words) else ""
        # A boundary: a comma, or the next word starts a phrase ("with", "in", ...).
        ends_on_verb = re.fullmatch(r"\w{3,}ing", piece[-1].lower())
        if not ends_on_verb and (
            piece[-1].endswith(",") or _CUT_RE.fullmatch(after.lower() or ",")
        ):
            best = piece
    return " ".join(_trim([w.rstrip(",;:") for w in best])) or words[0]


def subject_core(scene: str, theme: str | None) -> str:
    """The subject of a scene in a few words, for the title and a tag."""
    if theme:
        return _theme_core(theme)
    text = _FRAME_RE.sub("", scene, count=1) if _FRAME_RE.match(scene) else scene
    all_words = _unwrap(_strip_articles(re.findall(r"[\w'’-]+", text)))
    words = all_words
    for cut in _CUT_RE.finditer(text, 1):
        # The first cut that leaves a subject: "a mining outpost on..." is not cut at "mining".
        words = _unwrap(_strip_articles(re.findall(r"[\w'’-]+", text[: cut.start()])))
        if words:
            break
    words = words or all_words
    participle = next((i for i, w in enumerate(words) if i >= 2 and w.endswith("ed")), None)
    if participle:
        words = words[:participle]  # "a glass skyscraper reflected in..."
    if len(words) > 3 and "of" in words[1:-1]:
        at = words.index("of", 1)
        tail = 4 if at + 1 < len(words) and words[at + 1].lower() in _ARTICLES else 3
        words = words[max(0, at - 2) : at + tail]  # "storm elemental of cloud"
    elif len(words) > 3:
        words = words[-3:]
    words = _trim(_strip_articles(words))
    return " ".join(words[:5]) if words else " ".join(re.findall(r"[\w'’-]+", scene)[:3])


def _unwrap(words: list[str]) -> list[str]:
    """ "bowl of ramen" -> "ramen": the container is not the subject."""
    if "of" in words[:3]:
        at = words.index("of")
        if at and words[at - 1].lower() in _CONTAINERS:
            return _strip_articles(words[at + 1 :])
    return words


def _trim(words: list[str]) -> list[str]:
    """No title ends on a dangling "of", "with" or "the"."""
    while words and (words[-1].lower() in _DANGLING or words[-1].lower() in _DANGLING_OTHER):
        words = words[:-1]
    return words


def _strip_articles(words: list[str]) -> list[str]:
    while words and words[0].lower() in _ARTICLES:
        words = words[1:]
    return words


def article_for(core: str, scene: str) -> str:
    """ "the " when the scene gives the subject an article ("a lioness"), else ""."""
    first = core.split()[0] if core.split() else ""
    pattern = rf"\b(?:a|an|the|one)\s+{re.escape(first)}"
    return "the " if first and re.search(pattern, scene, re.IGNORECASE) else ""


def make_title(rng: random.Random, core: str, context: str, mood: str, article: str = "") -> str:
    """A title around the subject `core`: a frame, a mood or a time that fits the context."""
    core_t = _titlecase(core)
    noun = f"the {core_t}" if article else core_t  # "A Study of the Lioness", not "of Lioness"
    adjectives = [a for a in _ADJECTIVES if a.lower() not in core.lower()]
    frame = rng.choice(_FRAMES_AROUND)
    lowered = context.lower()
    taken = core.lower()
    when = next((label for key, label in _WHEN if key in lowered and key not in taken), None)
    weather = next((label for key, label in _WEATHER if key in lowered and key not in taken), None)
    options = [
        f"The {rng.choice(adjectives)} {core_t}",
        f"{core_t}, {rng.choice(_CODAS)}",
        frame.format(core_t if frame.startswith("{}") else noun),
    ]
    if when:
        options.append(f"{core_t} at {when}")
    if weather:
        options.append(f"{core_t} in {weather}")
    if mood and len(mood.split()) == 1 and mood.lower() not in core.lower():
        options.append(f"{mood.capitalize()} {core_t}")
    # Too long for a title? Choose a shorter shape; never cut one mid-phrase.
    fitting = [t for t in options if len(t) <= 60 and len(t.split()) <= 9]
    if not fitting:
        return core_t if len(core_t) <= 60 else _titlecase(" ".join(_trim(core.split()[:6])))
    return fix_articles(rng.choice(fitting))


def as_tag(text: str) -> str:
    """`text` as a tag: lowercase words, no punctuation."""
    text = re.sub(r"[^\w\s'-]+", " ", text.lower().replace("#", ""))
    return re.sub(r"\s+", " ", text).strip(" -'")


def make_tags(rng: random.Random, role: Role, parts: list[str], want: int) -> list[str]:
    """5-12 unique, lowercase tags: the role's own first, then what this scene is made of."""
    tags: list[str] = []

    def add(text: str) -> None:
        tag = " ".join(_strip_articles(as_tag(text).split()))
        if tag and len(tag.split()) <= 4 and len(tag) <= 40 and tag not in tags:
            tags.append(tag)

    own = list(role.tags)
    rng.shuffle(own)
    for tag in own[:3]:
        add(tag)
    for part in parts:
        for piece in re.split(r"[,;]", part):
            add(piece)
    for tag in own[3:]:
        if len(tags) >= 5:
            break
        add(tag)
    return tags[: max(5, min(12, want))]


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z-]+", text.lower()))


def fitting_mood(rng: random.Random, data_dir: Path, context: str) -> str:
    """A mood from data/ that does not contradict the light and style already drawn."""
    said = _words(context)
    for _ in range(6):
        mood = expand_text("__common/moods__", rng, data_dir)
        if "__" in mood:
            return ""  # no moods file in this data dir
        words = _words(mood)
        if not ((words & _BRIGHT and said & _DARK) or (words & _DARK and said & _BRIGHT)):
            return mood
    return ""


def author_clause(author: str) -> str:
    """The picked author as a clause of the description ("" when there is none)."""
    author = author.strip().rstrip(".")
    if not author:
        return ""
    if re.match(r"^(in|with|like|after|evoking|inspired)\b", author, re.IGNORECASE):
        return author
    return f"evoking {author}"


_PLACE_PHRASE = re.compile(r"\s+\b(?:at|in|under|during) (?:the |a )?[a-z]+\b")
_ACRONYM_ARTICLE = re.compile(r"\ba (?=[AEIO][A-Z])")


def tidy(text: str) -> str:
    """Drop a repeated time or place phrase ("at dawn ... at dawn") and fix "a AAA"."""
    seen: set[str] = set()

    def once(match: re.Match[str]) -> str:
        phrase = match.group(0).strip().lower()
        if phrase in seen:
            return ""
        seen.add(phrase)
        return match.group(0)

    return _ACRONYM_ARTICLE.sub("an ", _PLACE_PHRASE.sub(once, text))
