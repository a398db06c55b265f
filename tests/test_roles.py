"""Role packs in data/: every file loads, photography stays photographic, errors name the file."""

from __future__ import annotations

import random
import re
import shutil
from pathlib import Path

import pytest

from imagebot.providers.base import ConfigError, UsageError
from imagebot.providers.roles import (
    DATA_DIR,
    TUNING_DIR,
    compose_prompt,
    get_role,
    load_examples,
    load_roles,
    pick,
    role_ids,
)

PHOTO_ROLES = (
    "people-photographer",
    "animal-photographer",
    "food-photographer",
    "landscape-photographer",
)
NOT_A_PHOTO = re.compile(
    r"\b(render\w*|3d|2d|cgi|illustrat\w*|paint\w*|drawing|drawn|cartoon\w*|anime|octane|"
    r"unreal|unity|sketch\w*|digital art|concept art|watercolou?r|vector|pixel|gouache|"
    r"pixar|claymation|clay render|low-poly)\b",
    re.IGNORECASE,
)
MINIMAL_ROLE = """
name = "Test role"
summary = "A role for tests."
prefix = "test photo,"
scenes = ["${subject:a red door} in __places__"]
styles = ["plain"]
tags = ["test"]
"""


def copy_data(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(DATA_DIR, target)
    return target


def test_every_role_file_loads_and_there_are_at_least_twelve() -> None:
    roles = load_roles()
    files = sorted(p.stem for p in (DATA_DIR / "roles").glob("*.toml"))
    assert sorted(roles) == files == role_ids()
    assert len(roles) >= 12
    for role in roles.values():
        assert role.name and role.summary and role.prefix and role.negative_prompt
        assert len(role.scenes) >= 4 and role.styles and len(role.tags) >= 5
        assert role.settings["sampler"] and 10 <= role.settings["steps"] <= 60
        assert len(role.look["palette"]) >= 3 and role.look["mood"]


def test_render_role_offers_render_types_and_others_do_not() -> None:
    roles = load_roles()
    assert {"pixar-like", "octane render", "unreal engine 5", "unity engine"} <= set(
        roles["render-3d"].render_types
    )
    assert all(not roles[r].render_types for r in PHOTO_ROLES)


@pytest.mark.parametrize("role_id", PHOTO_ROLES)
def test_photography_roles_use_no_drawing_or_render_words(role_id: str) -> None:
    role = get_role(role_id)
    fields = (*role.scenes, *role.styles, *role.authors, *role.elements, *role.tags)
    for text in (role.prefix, role.suffix, *fields):
        assert not NOT_A_PHOTO.search(text), f"{role_id}: {text!r}"
    # The wildcards they draw from count too: expand many times and check what comes out.
    rng = random.Random(7)
    for _ in range(150):
        drawn = pick(role, rng)
        text = " ".join([drawn["scene"], drawn["style"], drawn["author"], *drawn["elements"]])
        assert not NOT_A_PHOTO.search(text), f"{role_id}: {text!r}"
    assert re.search(r"cartoon|illustration", role.negative_prompt)
    assert re.search(r"render|cgi", role.negative_prompt)


def test_every_template_of_every_role_expands_fully() -> None:
    rng = random.Random(1)
    for role in load_roles().values():
        for _ in range(60):
            drawn = pick(role, rng)
            text = " ".join([drawn["scene"], drawn["style"], drawn["author"], *drawn["elements"]])
            assert "__" not in text and "${" not in text and "{" not in text, (role.id, text)
            assert drawn["render_type"] in (role.render_types or ("",))


def test_roles_draw_varied_scenes() -> None:
    rng = random.Random(3)
    for role in load_roles().values():
        scenes = {pick(role, rng)["scene"] for _ in range(30)}
        assert len(scenes) >= 20, role.id


def test_same_seed_same_picks_and_theme_becomes_the_subject() -> None:
    role = get_role("food-photographer")
    assert pick(role, random.Random(42)) == pick(role, random.Random(42))
    assert pick(role, random.Random(42)) != pick(role, random.Random(43))
    themed = pick(role, random.Random(5), theme="a {weird} __theme__ with ${x}")
    assert "a {weird} __theme__ with ${x}" in themed["scene"]  # taken literally, not expanded


def test_theme_goes_in_front_of_a_scene_without_a_subject_slot(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "roles").mkdir(parents=True)
    (data / "wildcards").mkdir()
    (data / "wildcards" / "places.txt").write_text("# comment\na quiet yard\n")
    (data / "roles" / "plain.toml").write_text(MINIMAL_ROLE.replace("${subject:a red door}", "x"))
    role = get_role("plain", data)
    assert pick(role, random.Random(1), "lanterns", data)["scene"] == "lanterns, x in a quiet yard"


def test_unknown_role_lists_the_roles_there_are() -> None:
    with pytest.raises(UsageError) as caught:
        get_role("sculptor")
    message = str(caught.value)
    assert "sculptor" in message
    for role_id in ("food-photographer", "painter", "render-3d", "pixel-artist"):
        assert role_id in message


def test_role_names_are_forgiving_about_case_and_spaces() -> None:
    assert get_role("Food Photographer").id == "food-photographer"


def test_malformed_toml_is_reported_with_the_file_name(tmp_path: Path) -> None:
    data = copy_data(tmp_path)
    bad = data / "roles" / "broken-role.toml"
    bad.write_text('name = "Broken\nscenes = [')
    with pytest.raises(ConfigError, match=r"broken-role\.toml.*not valid TOML"):
        load_roles(data)


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ('scenes = ["${subject:a red door} in __places__"]', "'scenes' must be"),
        ("scnes = []", "unknown key(s) scnes"),
        ("[settings]\nsteps = 0", "settings.steps"),
        ('[look]\npalette = ["red"]', "look.palette"),
    ],
)
def test_a_wrong_field_is_reported_with_file_and_key(
    tmp_path: Path, change: str, complaint: str
) -> None:
    data = tmp_path / "data"
    (data / "roles").mkdir(parents=True)
    text = MINIMAL_ROLE + "\n" + change
    if complaint.startswith("'scenes'"):
        text = MINIMAL_ROLE.replace(
            'scenes = ["${subject:a red door} in __places__"]', "scenes = 3"
        )
    (data / "roles" / "odd.toml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_roles(data)
    assert "odd.toml" in str(caught.value) and complaint in str(caught.value)


def test_a_role_a_user_adds_is_picked_up_without_a_restart(tmp_path: Path) -> None:
    data = copy_data(tmp_path)
    before = role_ids(data)
    (data / "roles" / "zine-maker.toml").write_text(MINIMAL_ROLE)
    assert role_ids(data) == sorted([*before, "zine-maker"])
    assert get_role("zine-maker", data).name == "Test role"


def test_compose_prompt_frames_the_description_without_repeats() -> None:
    role = get_role("food-photographer")
    prompt = compose_prompt(
        role,
        "A bowl of ramen on a slate board. Steam rises in soft window light.",
        ["ramen", "food photography", "steam", "slate board", "Food Photography"],
        "dark and moody, soft window light",
    )
    assert prompt.startswith("professional food photograph, a bowl of ramen on a slate board")
    assert prompt.endswith(role.suffix)
    pieces = [p.strip().lower() for p in prompt.split(",")]
    assert len(pieces) == len(set(pieces))
    assert prompt.lower().count("food photography") == 1
    assert ",," not in prompt and " ," not in prompt and ".," not in prompt


def test_compose_prompt_carries_the_render_type() -> None:
    role = get_role("render-3d")
    prompt = compose_prompt(role, "A snail with a greenhouse.", ["cute"], "pastel", "octane render")
    assert "octane render" in prompt and prompt.startswith("3d render")


def test_every_role_has_good_tuning_examples() -> None:
    for role_id in role_ids():
        examples = load_examples(role_id)
        assert 3 <= len(examples) <= 5, role_id
        for example in examples:
            answer = example["answer"]
            assert 2 <= len(answer["title"].split()) <= 7, answer["title"]
            sentences = [s for s in re.split(r"(?<=[.!?])\s+", answer["description"]) if s]
            assert 1 <= len(sentences) <= 3, answer["description"]
            tags = answer["metatags"]
            assert 5 <= len(tags) <= 12 and len(set(tags)) == len(tags)
            assert all(t == t.lower() and "#" not in t for t in tags)
            assert "scene" in example["picks"]


def test_tuning_examples_of_photography_roles_stay_photographic() -> None:
    for role_id in PHOTO_ROLES:
        for example in load_examples(role_id):
            answer = example["answer"]
            text = " ".join([answer["title"], answer["description"], *answer["metatags"]])
            assert not NOT_A_PHOTO.search(text), text


def test_missing_tuning_file_is_no_examples_and_a_bad_line_names_file_and_line(
    tmp_path: Path,
) -> None:
    assert load_examples("nobody", tmp_path) == []
    good = (TUNING_DIR / "painter.jsonl").read_text().splitlines()[0]
    (tmp_path / "painter.jsonl").write_text(f"{good}\n\n{{not json\n")
    with pytest.raises(ConfigError, match=r"painter\.jsonl:3"):
        load_examples("painter", tmp_path)
    (tmp_path / "painter.jsonl").write_text('{"answer": {"title": "x"}}\n')
    with pytest.raises(ConfigError, match=r"painter\.jsonl:1: .*answer\.metatags"):
        load_examples("painter", tmp_path)


def test_the_suggestion_lists_exist() -> None:
    for name in ("themes", "subjects", "environments", "styles"):
        lines = (DATA_DIR / "wildcards" / f"{name}.txt").read_text().splitlines()
        options = [line for line in lines if line.strip() and not line.startswith("#")]
        assert len(options) >= 10, name


def test_templates_mean_what_dynamicprompts_says_they_mean() -> None:
    # roles.py parses the common syntax itself for speed; it must build dynamicprompts' commands.
    from dynamicprompts.parser.parse import parse

    from imagebot.providers.roles import _parse

    templates = {t for r in load_roles().values() for t in (*r.scenes, *r.styles, *r.authors)}
    for path in (DATA_DIR / "wildcards").rglob("*.txt"):
        lines = path.read_text().splitlines()
        templates |= {
            line for line in lines if ("{" in line or "__" in line) and not line.startswith("#")
        }
    templates |= {"a {b|{c|d} e}", "x {} y", "{a||b}", "${s:{p|q}} r", "#ff {a|b}"}
    for template in templates:
        assert _parse(template) == parse(template), template
