"""The offline `templates` prompt source: specs that read well, seeded, steered by a theme."""

from __future__ import annotations

import re
from dataclasses import asdict

import pytest

from imagebot.bot.settings import Settings
from imagebot.providers.base import PromptRequest, PromptSpec, UsageError
from imagebot.providers.catalog import build_prompt_source
from imagebot.providers.roles import get_role, role_ids
from imagebot.providers.templates import TemplateSource

RISKY = re.compile(
    r"\b(blood\w*|gore|gory|weapons?|guns?|knife|knives|swords?|nude|naked|corpses?|skulls?)\b",
    re.IGNORECASE,
)


async def generate(count: int, **request: object) -> list[PromptSpec]:
    return await TemplateSource().generate(PromptRequest(count=count, **request))


def check_spec(spec: PromptSpec) -> None:
    """What every spec must look like to a user reading the post or the CSV."""
    role = get_role(spec.role)
    assert 2 <= len(spec.title.split()) <= 9 and len(spec.title) <= 60, spec.title
    assert spec.title[0].isupper()
    assert not spec.description.lower().startswith(spec.title.lower())
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", spec.description) if s]
    assert 1 <= len(sentences) <= 3 and spec.description.endswith("."), spec.description
    assert 5 <= len(spec.metatags) <= 12, spec.metatags
    assert len(set(spec.metatags)) == len(spec.metatags)
    for tag in spec.metatags:
        assert tag == tag.lower() and tag == tag.strip() and tag and "#" not in tag, tag
    assert spec.prompt.startswith(role.prefix.rstrip(","))
    # The role's framing is there, each phrase once (a phrase said earlier is not repeated).
    for piece in role.suffix.split(", "):
        assert spec.prompt.lower().count(piece.lower()) == 1, (piece, spec.prompt)
    assert "__" not in spec.prompt and "{" not in spec.prompt and ",," not in spec.prompt
    assert spec.negative_prompt == role.negative_prompt
    assert spec.settings == role.settings
    assert spec.prompt_source == "templates"
    assert spec.picks["role"] == spec.role and isinstance(spec.picks["seed"], int)


async def test_a_batch_of_forty_reads_well_and_varies() -> None:
    specs = await generate(40, seed=2024)
    assert len(specs) == 40
    for spec in specs:
        check_spec(spec)
    assert len({s.title for s in specs}) >= 36
    assert len({s.description for s in specs}) == 40
    assert len({s.role for s in specs}) == len(role_ids())  # no role asked: all get a turn


async def test_every_role_makes_good_specs() -> None:
    for role_id in role_ids():
        specs = await generate(6, role=role_id, seed=9)
        assert {s.role for s in specs} == {role_id}
        for spec in specs:
            check_spec(spec)
        assert len({s.title for s in specs}) >= 5


async def test_render_role_names_its_render_type() -> None:
    specs = await generate(8, role="render-3d", seed=4)
    for spec in specs:
        render_type = spec.picks["render_type"]
        assert render_type in get_role("render-3d").render_types
        assert render_type in spec.prompt and render_type in spec.description


async def test_same_seed_same_specs_and_another_seed_differs() -> None:
    first = await generate(5, seed=77, theme="lanterns")
    again = await TemplateSource(seed=1).generate(PromptRequest(count=5, seed=77, theme="lanterns"))
    other = await generate(5, seed=78, theme="lanterns")
    assert [asdict(s) for s in first] == [asdict(s) for s in again]
    assert [s.title for s in first] != [s.title for s in other]


async def test_source_seed_makes_unseeded_requests_repeatable() -> None:
    one = await TemplateSource(seed=5).generate(PromptRequest(count=3))
    two = await TemplateSource(seed=5).generate(PromptRequest(count=3))
    assert [s.prompt for s in one] == [s.prompt for s in two]


async def test_a_recorded_seed_rerolls_that_exact_spec() -> None:
    batch = await generate(6, seed=31337, theme="a red kite")
    for spec in batch:
        (again,) = await generate(1, seed=spec.picks["seed"], role=spec.role, theme=spec.theme)
        assert asdict(again) | {"picks": {}} == asdict(spec) | {"picks": {}}


async def test_theme_steers_every_spec() -> None:
    specs = await generate(12, theme="a foggy harbour", seed=3)
    for spec in specs:
        check_spec(spec)
        assert spec.theme == "a foggy harbour"
        assert "foggy harbour" in spec.description.lower()
        assert "foggy harbour" in spec.prompt.lower()
        assert "foggy harbour" in spec.title.lower()
        assert "foggy harbour" in spec.metatags


async def test_theme_text_is_taken_literally() -> None:
    (spec,) = await generate(1, role="painter", theme="a {red|blue} __boat__", seed=1)
    assert "a {red|blue} __boat__" in spec.description.lower()


async def test_unknown_role_is_a_usage_error_listing_roles() -> None:
    with pytest.raises(UsageError, match="food-photographer"):
        await generate(1, role="baker")


async def test_photography_specs_never_mention_renders_or_drawings() -> None:
    words = re.compile(r"\b(render\w*|3d|2d|cgi|illustrat\w*|paint\w*|drawing|cartoon)\b", re.I)
    for role_id in ("people-photographer", "animal-photographer", "food-photographer"):
        for spec in await generate(15, role=role_id, seed=8):
            text = " ".join([spec.title, spec.prompt, *spec.metatags])
            assert not words.search(text), text


async def test_soften_swaps_risky_words_and_keeps_role_and_theme() -> None:
    source = TemplateSource()
    (spec,) = await source.generate(PromptRequest(role="fantasy-artist", seed=5, theme="knights"))
    spec.description = "A Bloody sword fight with nude knights over a corpse. Gore everywhere."
    spec.prompt = f"{spec.prompt}, blood, gore, weapons, naked warrior, skull throne"
    spec.metatags = [*spec.metatags[:4], "blood", "gore", "sword fight"]
    soft = await source.soften(spec, "content policy")
    for text in (soft.description, soft.prompt, " ".join(soft.metatags), soft.title):
        assert not RISKY.search(text), text
    assert soft.role == "fantasy-artist" and soft.theme == "knights"
    assert "knights" in soft.description
    assert 5 <= len(soft.metatags) <= 12 and all(t == t.lower() for t in soft.metatags)
    assert "gore" in soft.negative_prompt and spec.negative_prompt in soft.negative_prompt
    assert soft.negative_prompt.count("gore") == 1  # fantasy-artist already says gore once
    assert soft.picks["softened"] == "content policy" and soft.picks["seed"] == spec.picks["seed"]
    assert ",," not in soft.prompt and "  " not in soft.description
    assert spec.prompt != soft.prompt  # the original is left as it was


async def test_soften_makes_even_a_clean_prompt_gentler() -> None:
    source = TemplateSource()
    (spec,) = await source.generate(PromptRequest(role="painter", seed=2))
    soft = await source.soften(spec, "refused")
    assert soft.prompt.startswith(spec.prompt.split(",")[0])
    assert soft.prompt != spec.prompt and soft.negative_prompt != spec.negative_prompt


async def test_built_from_settings_by_the_registry_with_no_network() -> None:
    source = build_prompt_source("templates", Settings().provider_options)
    assert isinstance(source, TemplateSource)
    assert source.source_id == "templates" and source.model is None
    specs = await source.generate(PromptRequest(count=2))
    assert len(specs) == 2 and all(s.prompt_model is None for s in specs)
    await source.aclose()


async def test_zero_count_is_an_empty_list() -> None:
    assert await generate(0) == []
