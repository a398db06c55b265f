"""What the gpt source says to the model and how it reads the answer: schema, turns, checks."""

from __future__ import annotations

import json
import re
from typing import Any

from imagebot.providers.roles import Role

TITLE_MAX = 80
DESCRIPTION_MAX = 1000
TAGS_MIN, TAGS_MAX = 5, 12

SYSTEM_PROMPT = f"""\
You write prompt specs for an image generator. Each brief names a role (the kind of artist \
whose eye the image is seen through), a scene, and often an author to echo, a style, \
elements and a render type. For each brief, invent one striking image that follows it.

A prompt spec has:
- "title": a short, vivid name for the image (at most {TITLE_MAX} characters);
- "description": a detailed description of what the image shows: subject, setting, \
composition, light, colour and mood, written for the image generator (at most \
{DESCRIPTION_MAX} characters, no lists);
- "metatags": {TAGS_MIN} to {TAGS_MAX} of the most relevant tags, lowercase, without '#'.

Answer only with JSON of the form {{"specs": [{{"title": ..., "description": ..., \
"metatags": [...]}}, ...]}}, one spec per brief, in the order of the briefs."""

SOFTEN_PROMPT = f"""\
You edit image prompts that an image service refused for safety. Keep the idea, the role's \
style and the mood, but remove or tone down whatever could trip a safety filter (violence, \
gore, nudity, real people, weapons, drugs, hateful or frightening content). Answer only with \
JSON of the form {{"description": ..., "metatags": [...]}}: the new description (at most \
{DESCRIPTION_MAX} characters) and {TAGS_MIN} to {TAGS_MAX} lowercase tags without '#'."""

_SPEC = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "description": {"type": "string"},
        "metatags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["title", "description", "metatags"],
    "additionalProperties": False,
}
SPECS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"specs": {"type": "array", "items": _SPEC}},
    "required": ["specs"],
    "additionalProperties": False,
}
REWRITE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "description": {"type": "string"},
        "metatags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["description", "metatags"],
    "additionalProperties": False,
}


class SpecError(ValueError):
    """The model's answer cannot be used; the message says why, for the repair turn."""


# --------------------------------------------------------------------------- what we send


def brief(role: Role, picks: dict, theme: str | None) -> str:
    """One line that steers one spec: role, scene, author, style, elements, render type."""
    parts = [f"role: {role.name} ({role.summary.rstrip('.')})"]
    if picks.get("scene"):
        parts.append(f"scene: {picks['scene']}")
    if picks.get("author"):
        parts.append(f"author: {picks['author']}")
    if picks.get("style"):
        parts.append(f"style: {picks['style']}")
    elements = picks.get("elements") or []
    if isinstance(elements, str):
        elements = [elements]
    if elements:
        parts.append(f"elements: {', '.join(elements)}")
    if picks.get("render_type"):
        parts.append(f"render type: {picks['render_type']}")
    if theme:
        parts.append(f"theme the user asked for: {theme}")
    return "; ".join(parts)


def request_message(briefs: list[str]) -> str:
    """The user turn asking for one spec per brief."""
    noun = "prompt spec" if len(briefs) == 1 else "prompt specs"
    lines = [f"Write {len(briefs)} {noun}, one per brief, as JSON."]
    lines += [f"Brief {number}: {text}" for number, text in enumerate(briefs, start=1)]
    return "\n".join(lines)


def example_turns(role: Role, example: dict) -> list[dict[str, str]]:
    """A tuning/<role>.jsonl example as a user/assistant exchange in the real format."""
    picks = example.get("picks") or {}
    answer = example["answer"]
    spec = {k: answer[k] for k in ("title", "description", "metatags")}
    return [
        {"role": "user", "content": request_message([brief(role, picks, example.get("theme"))])},
        {"role": "assistant", "content": json.dumps({"specs": [spec]}, ensure_ascii=False)},
    ]


def repair_message(error: str, count: int) -> str:
    """The user turn that sends a bad answer's problem back to the model."""
    wanted = f" with all {count} specs" if count else ""
    return (
        f"That answer could not be used: {error}. Answer again{wanted} as valid JSON "
        "of the form asked for, and nothing else."
    )


def response_format(mode: str, name: str, schema: dict) -> dict | None:
    """The `response_format` for an output mode: json_schema (strict), json_object or none."""
    if mode == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {"name": name, "strict": True, "schema": schema},
        }
    if mode == "json_object":
        return {"type": "json_object"}
    return None


# --------------------------------------------------------------------------- what we read

_THINKING = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)


def extract_json(text: str) -> Any:
    """The JSON in an answer: bare, in a code fence, or the first object amid chatter."""
    # Reasoning models served by Ollama and vLLM may think aloud before the answer.
    text = _THINKING.sub("", text or "").strip()
    if not text:
        raise SpecError("the answer was empty")
    candidates = [text, *(m.group(1).strip() for m in _FENCE.finditer(text))]
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    decoder = json.JSONDecoder()
    for match in re.finditer(r"[{\[]", text):
        try:
            return decoder.raw_decode(text, match.start())[0]
        except ValueError:
            continue
    raise SpecError(f"the answer is not valid JSON (it began {text[:60]!r})")


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(" ,;:-")
    return cut or text[:limit]


def clean_tags(raw: Any) -> list[str]:
    """Lowercase, no '#', no blanks or repeats, at most TAGS_MAX; SpecError if under TAGS_MIN."""
    if isinstance(raw, str):
        raw = raw.split(",")
    if not isinstance(raw, list):
        raise SpecError("metatags must be a list of strings")
    tags: list[str] = []
    for item in raw:
        if not isinstance(item, str):
            continue
        tag = " ".join(item.replace("#", " ").split()).lower().strip(" .,;")
        if tag and tag not in tags:
            tags.append(tag)
    if len(tags) < TAGS_MIN:
        raise SpecError(
            f"metatags must hold {TAGS_MIN} to {TAGS_MAX} distinct tags, got {len(tags)}"
        )
    return tags[:TAGS_MAX]


def clean_description(raw: Any) -> str:
    """A trimmed, non-empty description of at most DESCRIPTION_MAX characters."""
    if not isinstance(raw, str) or not raw.strip():
        raise SpecError("description must be a non-empty string")
    return _clip(" ".join(raw.split()), DESCRIPTION_MAX)


def clean_spec(raw: Any) -> dict:
    """A checked {title, description, metatags}; SpecError says what is wrong."""
    if not isinstance(raw, dict):
        raise SpecError("each spec must be an object with title, description and metatags")
    title = raw.get("title")
    if not isinstance(title, str) or not title.strip():
        raise SpecError("title must be a non-empty string")
    return {
        "title": _clip(" ".join(title.split()), TITLE_MAX),
        "description": clean_description(raw.get("description")),
        "metatags": clean_tags(raw.get("metatags")),
    }


def read_specs(text: str, count: int) -> list[dict]:
    """`count` checked specs from an answer; SpecError naming every problem found."""
    data = extract_json(text)
    if isinstance(data, dict) and isinstance(data.get("specs"), list):
        items = data["specs"]
    elif isinstance(data, list):
        items = data
    elif isinstance(data, dict) and "title" in data:
        items = [data]
    else:
        raise SpecError('expected a JSON object of the form {"specs": [...]}')
    if len(items) < count:
        raise SpecError(f"expected {count} specs, got {len(items)}")
    specs, problems = [], []
    for number, item in enumerate(items[:count], start=1):
        try:
            specs.append(clean_spec(item))
        except SpecError as exc:
            problems.append(f"spec {number}: {exc}" if count > 1 else str(exc))
    if problems:
        raise SpecError("; ".join(problems))
    return specs


def read_rewrite(text: str) -> dict:
    """A checked {description, metatags} from a soften answer."""
    data = extract_json(text)
    if isinstance(data, dict) and isinstance(data.get("specs"), list) and data["specs"]:
        data = data["specs"][0]
    if not isinstance(data, dict):
        raise SpecError(
            'expected a JSON object of the form {"description": ..., "metatags": [...]}'
        )
    return {
        "description": clean_description(data.get("description")),
        "metatags": clean_tags(data.get("metatags")),
    }
