"""The offline `local` renderer: exact sizes, seeds, colours and scenes that follow the prompt."""

from __future__ import annotations

import asyncio
import io
import itertools

import pytest
from PIL import Image, ImageChops, ImageStat

from imagebot.bot.settings import Settings
from imagebot.providers.base import BadResponse, ProviderError, RenderRequest, Size
from imagebot.providers.catalog import build_provider
from imagebot.providers.local import upscale
from imagebot.providers.local.motifs import choose_motif
from imagebot.providers.local.provider import LocalProvider
from imagebot.providers.local.upscale import upscale_locally

ROLES = [
    "landscape-photographer",
    "food-photographer",
    "people-photographer",
    "monster-concept-artist",
    "render-3d",
    "illustrator-2d",
    "pixel-artist",
    "painter",
]


async def render(
    prompt: str, role: str = "landscape-photographer", size: str = "128x128", seed: int = 1
) -> bytes:
    provider = LocalProvider()
    request = RenderRequest(prompt, "", Size.parse(size), (seed,), role=role)
    (image,) = await provider.render(request)
    assert image.seed == seed and image.format == "png"
    return image.data


def opened(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


def difference(a: bytes, b: bytes) -> float:
    """Mean absolute difference of two images' luminance, 0-255."""
    return ImageStat.Stat(
        ImageChops.difference(opened(a).convert("L"), opened(b).convert("L"))
    ).mean[0]


def test_metadata_and_sizes_render_exactly_what_is_asked() -> None:
    provider = LocalProvider.from_options(Settings().provider_options, None)
    assert (provider.provider_id, provider.offline) == ("local", True)
    assert provider.model == "offline-procedural-v1"
    assert (provider.max_images_per_call, provider.max_concurrency) == (1, 2)
    for size in (Size(64, 64), Size(1000, 701), Size(4096, 4096), Size(333, 4096)):
        assert provider.sizes().fit(size) == size


def test_the_registry_builds_it_with_no_configuration() -> None:
    provider = build_provider("local", Settings().provider_options, None)  # type: ignore[arg-type]
    assert isinstance(provider, LocalProvider)


@pytest.mark.parametrize(
    ("size", "role"),
    [
        ("64x64", "landscape-photographer"),
        ("1024x576", "people-photographer"),
        ("576x1024", "pixel-artist"),
        ("333x777", "painter"),
        ("1000x64", "render-3d"),
        ("64x700", "illustrator-2d"),
        ("130x90", "monster-concept-artist"),
    ],
)
async def test_output_is_a_valid_png_of_exactly_the_requested_size(size: str, role: str) -> None:
    data = await render("a foggy harbour at dawn", role, size)
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    assert image.size == (Size.parse(size).width, Size.parse(size).height)
    image.verify()


async def test_same_seed_gives_identical_bytes_and_other_seeds_other_pictures() -> None:
    first = await render("misty mountain lake", seed=7)
    again = await render("misty mountain lake", seed=7)
    assert first == again
    for other in (8, 9, 12345):
        assert difference(first, await render("misty mountain lake", seed=other)) > 8


async def test_one_request_with_several_seeds_returns_one_image_per_seed() -> None:
    request = RenderRequest("a red fox", "", Size(96, 64), (3, 4), role="animal-photographer")
    images = await LocalProvider().render(request)
    assert [i.seed for i in images] == [3, 4]
    assert images[0].data != images[1].data


@pytest.mark.parametrize("role", ["landscape-photographer", "painter", "render-3d", "pixel-artist"])
async def test_colour_words_set_the_palette(role: str) -> None:
    for seed in (1, 2, 3):
        red, green, blue = ImageStat.Stat(
            opened(await render("crimson sunset", role, seed=seed))
        ).mean
        assert red > blue + 10 and red > green, "a crimson sunset should be red/orange"
        red, green, blue = ImageStat.Stat(
            opened(await render("teal ocean night", role, seed=seed))
        ).mean
        assert blue > red + 10, "a teal ocean at night should be blue"


async def test_scene_words_change_the_light() -> None:
    for seed in (1, 2, 3):
        snow = ImageStat.Stat(
            opened(await render("snowy mountain at noon", seed=seed)).convert("L")
        )
        night = ImageStat.Stat(
            opened(await render("city skyline at night", seed=seed)).convert("L")
        )
        assert snow.mean[0] > night.mean[0] + 40


async def test_monochrome_and_sepia_grade_the_picture() -> None:
    mono = ImageStat.Stat(opened(await render("monochrome forest", "painter"))).mean
    assert max(mono) - min(mono) < 3
    sepia = ImageStat.Stat(opened(await render("sepia harbour", "people-photographer"))).mean
    assert sepia[0] > sepia[1] > sepia[2]


async def test_each_role_has_its_own_composition() -> None:
    images = {role: await render("a quiet evening", role, seed=5) for role in ROLES}
    for a, b in itertools.combinations(ROLES, 2):
        assert difference(images[a], images[b]) > 12, f"{a} and {b} look alike"


@pytest.mark.parametrize(
    ("prompt", "role"),
    [
        ("underwater coral reef", "fantasy-artist"),
        ("a ringed planet in a nebula", "landscape-photographer"),
        ("a bowl of ramen", "food-photographer"),
        ("a fox in the snow", "animal-photographer"),
        ("a horned beast", "monster-concept-artist"),
        ("city skyline at night by the harbour", "painter"),
        ("floating islands and a castle, stormy", "fantasy-artist"),
    ],
)
async def test_every_scene_paints_a_picture_not_a_blank(prompt: str, role: str) -> None:
    image = opened(await render(prompt, role, "160x96"))
    assert image.size == (160, 96)
    assert ImageStat.Stat(image.convert("L")).stddev[0] > 12


async def test_unknown_role_and_empty_prompt_still_render() -> None:
    data = await render("", "no-such-role", "80x64")
    assert opened(data).size == (80, 64)


async def test_rendering_runs_in_a_thread_and_leaves_the_loop_free() -> None:
    task = asyncio.create_task(render("crimson sunset over the sea", size="1024x1024"))
    ticks = 0
    while not task.done():
        ticks += 1
        await asyncio.sleep(0.001)
    assert opened(await task).size == (1024, 1024)
    assert ticks > 3, "the event loop was blocked while the image was painted"


async def test_a_painting_failure_is_one_clear_provider_error(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from imagebot.providers.local import art

    def broken(*args: object) -> None:
        raise RuntimeError("palette exploded")

    monkeypatch.setattr(art, "paint", broken)
    with pytest.raises(BadResponse, match="palette exploded"):
        await render("anything")


# --------------------------------------------------------------------------- motifs (issue 11.13)


@pytest.mark.parametrize(
    ("prompt", "motif"),
    [
        ("award-winning wildlife photograph, a red fox in the snow", "fox"),
        ("a hare in tall grass at dawn", "hare"),
        ("a white rabbit under a hedge", "hare"),
        ("a heron fishing at the edge of a lake", "bird"),
        ("koi fish circling in green water", "fish"),
        ("a grey horse on a beach", "horse"),
        ("a stag in the forest at first light", "deer"),
        ("an old lighthouse on a cliff", "tower"),
        ("a row of pastel townhouses on a steep street", "house"),
        ("a glowing portal in ancient ruins", "portal"),
        ("a bowl of tonkotsu ramen with an egg", "soup"),
        ("a strawberry cake on a stand", "cake"),
        ("a sourdough loaf on a board", "bread"),
        ("an old oak tree in a field", "tree"),
        ("sunflowers in a blue vase", "flower"),
        ("a sailboat at sunset", "boat"),
        ("a red car on a city street", "car"),
        ("a cat asleep on a windowsill", "cat"),
        ("a horned beast in a cave", "creature"),
        ("portrait of an old sailor", "person"),
        ("a fine art painting, Кот на крыше на закате", "cat"),
        ("屋根の上の猫", "cat"),
        ("חתול על הגג בשקיעה", "cat"),
        ("قطة على السطح عند الغروب", "cat"),
    ],
)
def test_the_motif_is_what_the_prompt_names(prompt: str, motif: str) -> None:
    assert choose_motif(prompt) == motif


def test_different_subjects_get_different_motifs_and_no_subject_none() -> None:
    subjects = ["a fox", "a hare", "a bird", "a fish", "a horse", "a deer", "a house", "a portal",
                "a bowl of soup", "a cake", "bread", "a tree", "a flower", "a boat",
                "a car"]  # fmt: skip
    chosen = [choose_motif(s) for s in subjects]
    assert len(set(chosen)) == len(subjects), chosen
    assert choose_motif("a quiet evening") is None


def coarse_difference(a: bytes, b: bytes) -> float:
    """Mean RGB difference of two images shrunk to 8x8: layout and palette, not grain."""

    def shrink(data: bytes) -> Image.Image:
        return opened(data).resize((8, 8), Image.Resampling.BOX)

    return sum(ImageStat.Stat(ImageChops.difference(shrink(a), shrink(b))).mean) / 3


async def test_seeds_of_one_prompt_differ_visibly() -> None:
    prompt = "a glowing portal in the ruins"
    images = [await render(prompt, "fantasy-artist", seed=s) for s in (1, 2, 3, 4)]
    for a, b in itertools.combinations(images, 2):
        assert coarse_difference(a, b) > 17  # composition and palette move, not only grain


# --------------------------------------------------------------------------- Vary and Upscale


async def test_vary_blends_the_init_image_with_a_new_render_by_strength() -> None:
    provider = LocalProvider()
    assert provider.accepts_init_image is True
    init = await render("a glowing portal in the ruins", "fantasy-artist", seed=1)
    fresh = await render("a glowing portal in the ruins", "fantasy-artist", seed=9)
    size = Size.parse("128x128")
    request = RenderRequest(
        "a glowing portal in the ruins", "", size, (9,), role="fantasy-artist",
        init_image=init, strength=0.55,
    )  # fmt: skip
    (varied,) = await provider.render(request)
    assert opened(varied.data).size == (128, 128) and varied.seed == 9
    apart = difference(init, fresh)
    assert apart > 10
    # Resembles the init image, but is not it: about `strength` of the way to the new render.
    assert 0.3 * apart < difference(varied.data, init) < 0.75 * apart
    (again,) = await provider.render(request)
    assert again.data == varied.data  # seeded
    gentle = RenderRequest(
        request.prompt, "", size, (9,), role="fantasy-artist", init_image=init, strength=0.2
    )
    (close,) = await provider.render(gentle)
    assert difference(close.data, init) < difference(varied.data, init)


async def test_upscale_locally_doubles_the_size_as_png() -> None:
    data = await render("a sailboat at sunset", "painter", "96x64")
    up = upscale_locally(data)
    assert (up.width, up.height, up.upscaler, up.format) == (192, 128, "local", "png")
    image = Image.open(io.BytesIO(up.data))
    assert image.format == "PNG" and image.size == (192, 128)


def test_upscale_refuses_an_image_over_the_pixel_cap(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(upscale, "MAX_INPUT_PIXELS", 100 * 100)
    buf = io.BytesIO()
    Image.new("RGB", (128, 128)).save(buf, "PNG")
    with pytest.raises(ProviderError, match=r"128x128 .*at most 10,000 pixels"):
        upscale_locally(buf.getvalue())
    with pytest.raises(ProviderError, match="cannot read the image"):
        upscale_locally(b"not an image")
