"""Role packs: data/roles/*.toml read into Roles, their templates expanded, prompts composed."""

from __future__ import annotations

import json
import random
import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from imagebot.providers.base import ConfigError, UsageError
from imagebot.providers.content import DATA_DIR, TUNING_DIR

_REQUIRED_TEXT = ("name", "summary", "prefix")
_OPTIONAL_TEXT = ("suffix", "negative_prompt")
_REQUIRED_LISTS = ("scenes", "styles", "tags")
_OPTIONAL_LISTS = ("authors", "elements", "render_types")
_KNOWN_KEYS = {*_REQUIRED_TEXT, *_OPTIONAL_TEXT, *_REQUIRED_LISTS, *_OPTIONAL_LISTS}
_KNOWN_KEYS |= {"settings", "look"}
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
# The slot a scene template names its subject with; a user's theme fills it (see data/README.md).
SUBJECT_VARIABLE = "subject"


@dataclass(frozen=True)
class Role:
    """One style pack: what a role draws from and how its prompts are framed and rendered."""

    id: str
    name: str
    summary: str
    prefix: str
    suffix: str
    negative_prompt: str
    scenes: tuple[str, ...]
    authors: tuple[str, ...]
    styles: tuple[str, ...]
    elements: tuple[str, ...]
    tags: tuple[str, ...]
    render_types: tuple[str, ...]
    settings: dict
    look: dict


# --------------------------------------------------------------------------- loading


def _role_from_toml(path: Path) -> Role:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"role file {path}: not valid TOML: {exc}") from None

    def fail(what: str) -> ConfigError:
        return ConfigError(f"role file {path}: {what}")

    unknown = sorted(set(raw) - _KNOWN_KEYS)
    if unknown:
        raise fail(
            f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_KNOWN_KEYS))}"
        )
    values: dict[str, Any] = {}
    for key in (*_REQUIRED_TEXT, *_OPTIONAL_TEXT):
        value = raw.get(key, "" if key in _OPTIONAL_TEXT else None)
        if not isinstance(value, str) or (key in _REQUIRED_TEXT and not value.strip()):
            raise fail(f"{key!r} must be a non-empty string")
        values[key] = value.strip()
    for key in (*_REQUIRED_LISTS, *_OPTIONAL_LISTS):
        items = raw.get(key, [] if key in _OPTIONAL_LISTS else None)
        if not isinstance(items, list) or not all(isinstance(i, str) and i.strip() for i in items):
            raise fail(f"{key!r} must be a list of non-empty strings")
        if key in _REQUIRED_LISTS and not items:
            raise fail(f"{key!r} must list at least one entry")
        values[key] = tuple(i.strip() for i in items)
    values["settings"] = _check_settings(raw.get("settings", {}), fail)
    values["look"] = _check_look(raw.get("look", {}), fail)
    return Role(id=path.stem, **values)


def _check_settings(settings: Any, fail: Any) -> dict:
    if not isinstance(settings, dict):
        raise fail("[settings] must be a table")
    steps = settings.get("steps", 30)
    cfg = settings.get("cfg_scale", 7)
    sampler = settings.get("sampler", "DPM++ 2M Karras")
    if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= 150:
        raise fail("settings.steps must be a whole number from 1 to 150")
    if not isinstance(cfg, int | float) or isinstance(cfg, bool) or not 1 <= cfg <= 30:
        raise fail("settings.cfg_scale must be a number from 1 to 30")
    if not isinstance(sampler, str) or not sampler.strip():
        raise fail("settings.sampler must be a sampler name such as 'DPM++ 2M Karras'")
    return {**settings, "steps": steps, "cfg_scale": cfg, "sampler": sampler}


def _check_look(look: Any, fail: Any) -> dict:
    if not isinstance(look, dict):
        raise fail("[look] must be a table")
    palette = look.get("palette", [])
    if not isinstance(palette, list) or not all(
        isinstance(c, str) and _HEX.match(c) for c in palette
    ):
        raise fail("look.palette must be a list of colours like '#a1b2c3'")
    for key in ("composition", "mood"):
        if key in look and not isinstance(look[key], str):
            raise fail(f"look.{key} must be a string")
    return dict(look)


_cache: dict[Path, tuple[tuple, dict[str, Role]]] = {}


def load_roles(data_dir: Path = DATA_DIR) -> dict[str, Role]:
    """Every role in `data_dir/roles`, by id; re-read only when a file changed."""
    roles_dir = Path(data_dir) / "roles"
    files = sorted(roles_dir.glob("*.toml"))
    signature = tuple((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    cached = _cache.get(roles_dir)
    if cached and cached[0] == signature:
        return cached[1]
    if not files:
        raise ConfigError(f"no role files (*.toml) in {roles_dir}")
    roles = {f.stem: _role_from_toml(f) for f in files}
    _cache[roles_dir] = (signature, roles)
    return roles


def role_ids(data_dir: Path = DATA_DIR) -> list[str]:
    """The ids of every role, sorted."""
    return sorted(load_roles(data_dir))


def get_role(role_id: str, data_dir: Path = DATA_DIR) -> Role:
    """The role `role_id`; UsageError listing the roles there are when it is unknown."""
    roles = load_roles(data_dir)
    key = (role_id or "").strip().lower().replace(" ", "-").replace("_", "-")
    if key in roles:
        return roles[key]
    raise UsageError(f"unknown role {role_id!r}; choose one of: {', '.join(sorted(roles))}")


# --------------------------------------------------------------------------- expansion


class _Unsupported(Exception):
    """Syntax beyond the quick subset: hand the template to dynamicprompts' own parser."""


_WILDCARD_PATH = re.compile(r"[\w./*-]+")
_VARIABLE_NAME = re.compile(r"\w+")


def _quick_parse(text: str) -> Any:
    """Parse literals, {a|b}, __wildcards__ and ${name:default} into dynamicprompts commands.

    dynamicprompts' pyparsing grammar costs milliseconds per template, and wildcard values are
    parsed at every draw; this covers what role files use in microseconds and yields the same
    commands, so sampling (and seeded output) is dynamicprompts' own.
    """
    from dynamicprompts.commands import (
        LiteralCommand,
        SequenceCommand,
        VariantCommand,
        VariantOption,
        WildcardCommand,
    )
    from dynamicprompts.commands.variable_commands import VariableAccessCommand

    def sequence(pos: int, stops: str) -> tuple[Any, int]:
        tokens: list[Any] = []
        literal: list[str] = []

        def flush() -> None:
            if literal:
                tokens.append(LiteralCommand("".join(literal)))
                literal.clear()

        while pos < len(text) and text[pos] not in stops:
            if text.startswith("__", pos):
                end = text.find("__", pos + 2)
                path = text[pos + 2 : end]
                if end < 0 or not _WILDCARD_PATH.fullmatch(path):
                    raise _Unsupported
                flush()
                tokens.append(WildcardCommand(wildcard=path))
                pos = end + 2
            elif text[pos] == "{":
                flush()
                options = []
                pos += 1
                while True:
                    while pos < len(text) and text[pos].isspace():
                        pos += 1
                    option, pos = sequence(pos, "|}")
                    options.append(VariantOption(option))
                    if pos >= len(text):
                        raise _Unsupported
                    pos += 1
                    if text[pos - 1] == "}":
                        break
                tokens.append(VariantCommand(variants=options))
            elif text.startswith("${", pos):
                match = _VARIABLE_NAME.match(text, pos + 2)
                if not match:
                    raise _Unsupported
                pos = match.end()
                default = None
                if text.startswith(":", pos):
                    default, pos = sequence(pos + 1, "}")
                if not text.startswith("}", pos):
                    raise _Unsupported
                flush()
                tokens.append(VariableAccessCommand(name=match.group(0), default=default))
                pos += 1
            elif text[pos] in "$\\}#" or text.startswith("::", pos):
                raise _Unsupported  # weights, ranges, escapes, comments: the full grammar
            else:
                literal.append(text[pos])
                pos += 1
        flush()
        if len(tokens) == 1:
            return tokens[0], pos
        if not tokens:
            return SequenceCommand(tokens=[]), pos
        return SequenceCommand(tokens=tokens), pos

    command, end = sequence(0, "")
    if end != len(text):
        raise _Unsupported
    return command


@lru_cache(maxsize=8192)
def _parse(template: str) -> Any:
    try:
        return _quick_parse(template)
    except _Unsupported:
        from dynamicprompts.parser.parse import parse

        return parse(template)


@lru_cache(maxsize=16)
def _wildcards(data_dir: Path | str) -> Any:
    from dynamicprompts.wildcards import WildcardManager

    return WildcardManager(Path(data_dir) / "wildcards")


@lru_cache(maxsize=1)
def _context_class() -> type:
    from dynamicprompts.sampling_context import SamplingContext

    @dataclass(frozen=True)
    class CachedContext(SamplingContext):
        """Parses each template once: wildcard values are re-parsed on every draw otherwise."""

        def sample_prompts(self, prompt: Any, num_prompts: int | None = None) -> Any:
            if isinstance(prompt, str) and prompt:
                prompt = _parse(prompt)
            return super().sample_prompts(prompt, num_prompts)

    return CachedContext


def _context(rng: random.Random, data_dir: Path, theme: str | None) -> Any:
    from dynamicprompts.commands import LiteralCommand
    from dynamicprompts.enums import SamplingMethod

    variables = {SUBJECT_VARIABLE: LiteralCommand(theme)} if theme else {}
    return _context_class()(
        default_sampling_method=SamplingMethod.RANDOM,
        wildcard_manager=_wildcards(data_dir),
        rand=random.Random(rng.getrandbits(64)),
        variables=variables,
        unknown_variable_value="",
    )


def expand(template: str, context: Any, role: Role | None = None) -> str:
    """One random expansion of a dynamicprompts template, whitespace tidied."""
    try:
        text = str(next(iter(context.sample_prompts(template, 1))))
    except Exception as exc:  # pyparsing and sampler errors: name the template, not a traceback
        where = f"role {role.id!r}" if role else "template"
        raise ConfigError(f"{where}: cannot expand {template!r}: {exc}") from None
    return re.sub(r"\s+", " ", text).strip(" ,")


def expand_text(
    template: str, rng: random.Random, data_dir: Path = DATA_DIR, theme: str | None = None
) -> str:
    """One seeded expansion of any template using the wildcards in `data_dir`."""
    return expand(template, _context(rng, data_dir, theme))


def pick(
    role: Role, rng: random.Random, theme: str | None = None, data_dir: Path = DATA_DIR
) -> dict:
    """Draw a scene, author, style, elements and render type; a theme becomes the subject."""
    theme = (theme or "").strip() or None
    context = _context(rng, data_dir, theme)
    scenes = role.scenes
    if theme:
        slotted = tuple(s for s in scenes if "${" + SUBJECT_VARIABLE in s)
        scenes = slotted or scenes
    template = scenes[rng.randrange(len(scenes))]
    scene = expand(template, context, role)
    if theme and theme.lower() not in scene.lower():
        scene = f"{theme}, {scene}"
    count = min(len(role.elements), rng.choice((2, 2, 3)))
    elements = [expand(t, context, role) for t in rng.sample(role.elements, count)]
    return {
        "scene": scene,
        "author": expand(rng.choice(role.authors), context, role) if role.authors else "",
        "style": expand(rng.choice(role.styles), context, role),
        "elements": elements,
        "render_type": rng.choice(role.render_types) if role.render_types else "",
    }


# --------------------------------------------------------------------------- prompts


def _norm(text: str) -> str:
    # Letters of every script count: a Cyrillic or Japanese theme is not an empty piece.
    return re.sub(r"[\W_]+", " ", text.lower()).strip()


def _lower_start(piece: str) -> str:
    """Sentence case inside a comma list reads as noise; keep names ("Ansel Adams") as they are."""
    words = piece.split(" ", 2)
    if words[0] in ("A", "An", "The") or (words[0][:1].isupper() and words[0][1:2].islower()):
        if len(words) == 1 or not words[1][:1].isupper():
            return piece[0].lower() + piece[1:]
    return piece


def compose_prompt(
    role: Role, description: str, metatags: list[str], style: str, render_type: str = ""
) -> str:
    """Prefix, description, style, render type, tags and suffix as one tidy comma list."""
    pieces: list[str] = []
    said = "|"  # every piece so far, normalised, each wrapped in spaces and split by "|"
    for part in (role.prefix, description, style, render_type, *metatags, role.suffix):
        for piece in re.split(r"\s*[,;]\s*|(?<=\.)\s+", part or ""):
            piece = piece.strip(" .,;")
            key = _norm(piece)
            if not key:
                continue
            # A tag already said in the description or prefix adds nothing but weight.
            if f" {key} " in said:
                continue
            said += f" {key} |"
            pieces.append(_lower_start(piece))
    return ", ".join(pieces)


def load_examples(role_id: str, tuning_dir: Path = TUNING_DIR) -> list[dict]:
    """The few-shot answers in tuning/<role>.jsonl; [] when there are none."""
    path = Path(tuning_dir) / f"{role_id}.jsonl"
    if not path.is_file():
        return []
    examples = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            example = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}:{number}: not valid JSON: {exc.msg}") from None
        answer = example.get("answer") if isinstance(example, dict) else None
        if (
            not isinstance(answer, dict)
            or not isinstance(answer.get("title"), str)
            or not isinstance(answer.get("description"), str)
            or not isinstance(answer.get("metatags"), list)
        ):
            raise ConfigError(
                f"{path}:{number}: needs an object with answer.title, answer.description "
                "and answer.metatags (a list)"
            )
        example.setdefault("theme", None)
        example.setdefault("picks", {})
        examples.append(example)
    return examples
