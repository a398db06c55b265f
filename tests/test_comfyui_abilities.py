"""ComfyUI's batching, Vary, Upscale, live previews and hang handling against the ComfyUI fake."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from imagebot.providers.base import ProviderError, RenderRequest, Size, Unavailable
from imagebot.providers.comfyui import ComfyUIProvider
from imagebot.providers.comfyui_watch import WatchTimes, preview_image
from tests.fakes.comfyui_server import FakeComfyUI, make_png

SMALL = Size(64, 48)


def ask(*seeds: int, steps: int = 4) -> RenderRequest:
    return RenderRequest(
        prompt="a lighthouse", negative_prompt="fog", size=SMALL, seeds=seeds,
        settings={"steps": steps},
    )  # fmt: skip


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as picture:
        return picture.size


def colour_of(data: bytes) -> tuple[int, ...]:
    with Image.open(io.BytesIO(data)) as picture:
        return picture.convert("RGB").getpixel((0, 0))


async def test_fewer_servers_than_images_is_one_batched_prompt_per_server(session) -> None:
    async with FakeComfyUI() as first, FakeComfyUI() as second:
        provider = ComfyUIProvider(session, [first.url, second.url], base_delay=0.01)
        images = await provider.render(ask(20, 21, 22, 23, 24))
    assert [image.seed for image in images] == [20, 21, 22, 23, 24]
    prompts = sorted(first.prompts + second.prompts, key=lambda p: p["3"]["inputs"]["seed"])
    shapes = [(p["3"]["inputs"]["seed"], p["5"]["inputs"]["batch_size"]) for p in prompts]
    assert shapes == [(20, 3), (23, 2)]  # seeds seed, seed+1, ... within each batch
    assert len(first.prompts) == len(second.prompts) == 1
    assert first.gpu_jobs == second.gpu_jobs == 1
    # image i of a batch is the batch's image i: the fake colours it by seed + i
    assert [colour_of(image.data) for image in images] == [
        colour_of(make_png(4, 4, seed)) for seed in (20, 21, 22, 23, 24)
    ]


async def test_as_many_servers_as_images_gives_each_one_image(session) -> None:
    async with FakeComfyUI() as first, FakeComfyUI() as second:
        provider = ComfyUIProvider(session, [first.url, second.url], base_delay=0.01)
        images = await provider.render(ask(5, 6))
    assert [image.seed for image in images] == [5, 6]
    assert [p["5"]["inputs"]["batch_size"] for p in first.prompts + second.prompts] == [1, 1]


async def test_a_workflow_without_batch_size_keeps_one_prompt_per_seed(session, tmp_path) -> None:
    graph = json.loads(_default().read_text())
    graph["5"]["inputs"]["batch_size"] = 1
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(graph))
    async with FakeComfyUI() as fake:
        provider = ComfyUIProvider(session, [fake.url], workflow_path=path)
        images = await provider.render(ask(1, 2, 3))
    assert [image.seed for image in images] == [1, 2, 3]
    assert sorted(p["3"]["inputs"]["seed"] for p in fake.prompts) == [1, 2, 3]


def _default() -> Path:
    from imagebot.providers.comfyui_workflow import DEFAULT_WORKFLOW

    return DEFAULT_WORKFLOW


async def test_vary_uploads_the_picture_and_loads_exactly_that_file(session) -> None:
    init = make_png(64, 48, 77)
    async with FakeComfyUI() as fake:
        provider = ComfyUIProvider(session, [fake.url])
        assert provider.accepts_init_image
        [image] = await provider.render(replace(ask(31), init_image=init, strength=0.4))
    [upload] = fake.uploads
    [workflow] = fake.prompts
    loads = [n for n in workflow.values() if n["class_type"] == "LoadImage"]
    [load] = loads
    assert fake.files[f"input//{load['inputs']['image']}"] == init  # the very bytes sent
    load_id = next(k for k, n in workflow.items() if n is load)
    encode = next(n for n in workflow.values() if n["class_type"] == "VAEEncode")
    assert encode["inputs"]["pixels"] == [load_id, 0]
    sampler = workflow["3"]["inputs"]
    assert sampler["denoise"] == 0.4 and sampler["seed"] == 31
    assert not any(n["class_type"] == "EmptyLatentImage" for n in workflow.values())
    assert image.seed == 31 and size_of(image.data) == (64, 48)
    assert (upload["type"], upload["overwrite"], upload["name"]) == (
        "input",
        "true",
        load["inputs"]["image"],
    )


async def test_vary_of_several_images_repeats_the_latent_in_one_prompt(session) -> None:
    async with FakeComfyUI() as fake:
        provider = ComfyUIProvider(session, [fake.url])
        images = await provider.render(replace(ask(8, 9), init_image=make_png(64, 48, 1)))
    [workflow] = fake.prompts
    repeat = next(n for n in workflow.values() if n["class_type"] == "RepeatLatentBatch")
    assert repeat["inputs"]["amount"] == 2 and workflow["3"]["inputs"]["denoise"] == 0.55
    assert [image.seed for image in images] == [8, 9]
    assert len(fake.logged("/upload/image", "POST")) == 1


async def test_upscale_uses_the_servers_upscale_model_and_lands_on_exactly_2x(session) -> None:
    async with FakeComfyUI(upscale_models=("RealESRGAN_x4plus.pth",)) as fake:
        provider = ComfyUIProvider(session, [fake.url])
        upscaled = await provider.upscale(make_png(64, 48, 3), 2)
    [workflow] = fake.prompts
    kinds = {n["class_type"]: n["inputs"] for n in workflow.values()}
    assert kinds["UpscaleModelLoader"]["model_name"] == "RealESRGAN_x4plus.pth"
    assert (kinds["ImageScale"]["width"], kinds["ImageScale"]["height"]) == (128, 96)
    assert size_of(upscaled.data) == (128, 96) == (upscaled.width, upscaled.height)
    assert "RealESRGAN_x4plus.pth" in upscaled.upscaler


async def test_upscale_without_a_model_is_lanczos_image_scale_by_2(session) -> None:
    async with FakeComfyUI() as fake:
        provider = ComfyUIProvider(session, [fake.url])
        upscaled = await provider.upscale(make_png(40, 24, 3), 2)
    [workflow] = fake.prompts
    kinds = {n["class_type"]: n["inputs"] for n in workflow.values()}
    assert "UpscaleModelLoader" not in kinds
    assert (
        kinds["ImageScaleBy"]["scale_by"] == 2
        and kinds["ImageScaleBy"]["upscale_method"] == "lanczos"
    )
    assert size_of(upscaled.data) == (80, 48)
    assert "lanczos" in upscaled.upscaler and "ImageScaleBy" in upscaled.upscaler


async def test_preview_frames_reach_the_preview_callback_with_the_fraction(session) -> None:
    seen: list[tuple[bytes, float | None]] = []
    async with FakeComfyUI(previews=True) as fake:
        provider = ComfyUIProvider(session, [fake.url])
        await provider.render(
            ask(3, steps=4), previews=lambda data, done: seen.append((data, done))
        )
    sent = [preview_image(frame) for frame in fake.previews_sent]
    assert len(sent) == 4 and all(frame[:8] == b"\0\0\0\1\0\0\0\1" for frame in fake.previews_sent)
    assert [data for data, _ in seen] == sent  # every new picture, as the server framed it
    assert [done for _, done in seen] == [0.25, 0.5, 0.75, 1.0]
    assert all(data.startswith(b"\xff\xd8") for data, _ in seen)  # JPEG, format 1


async def test_a_frozen_server_is_given_up_within_its_budget_in_one_line(session) -> None:
    async with FakeComfyUI(frozen=True) as fake:
        provider = ComfyUIProvider(
            session, [fake.url], timeout=5.0, answer_timeout=0.2, base_delay=0.01
        )
        with pytest.raises(Unavailable) as raised:
            await provider.render(ask(1, 2))
    message = str(raised.value)
    assert "ComfyUI at 127.0.0.1" in message and "no answer for 0.2 s" in message
    assert "\n" not in message
    assert not fake.prompts


async def test_a_stalled_gpu_is_reported_while_waiting_and_dropped_at_the_budget(session) -> None:
    notes: list[str] = []
    async with FakeComfyUI(stalled=True) as fake:
        provider = ComfyUIProvider(
            session, [fake.url], timeout=1.0, attempts=1,
            watch_times=WatchTimes(answer=0.1, hang=0.5, poll=0.05),
        )  # fmt: skip
        with pytest.raises(Unavailable) as raised:
            await provider.render(ask(40, 41), progress=notes.append)
        running = fake.history == {} and fake.logged("/interrupt", "POST")
    assert "did not finish within its 1.0 s budget" in str(raised.value)
    waiting = f"waiting for ComfyUI at {fake.url.removeprefix('http://')}: running seeds 40-41"
    assert any(note.startswith(waiting + ", no progress for") for note in notes)
    assert running  # the stuck prompt was stopped on the server, not left to run for nobody


async def test_a_bad_graph_is_rejected_in_one_line_naming_node_and_problem(
    session, tmp_path
) -> None:
    graph = json.loads(_default().read_text())
    graph["8"]["inputs"]["vae"] = ["4", 1]  # CLIP where VAEDecode wants a VAE
    graph["3"]["inputs"]["latent_image"] = ["99", 0]  # a node that is not there
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(graph))
    async with FakeComfyUI() as fake:
        provider = ComfyUIProvider(session, [fake.url], workflow_path=path)
        with pytest.raises(ProviderError) as raised:
            await provider.render(ask(1))
    message = str(raised.value)
    assert "\n" not in message and not isinstance(raised.value, Unavailable)
    assert "VAEDecode (node 8): Return type mismatch between linked nodes" in message
    assert "received_type(CLIP) mismatch input_type(VAE)" in message
    assert "KSampler (node 3): Bad linked input" in message
    assert not fake.prompts


async def test_u1_on_a_comfyui_batch_posts_the_servers_2x_upscale(tmp_path) -> None:
    from tests.discord_harness import offline_settings, posted_batch, start_bot, stop_bot
    from tests.fakes.discord_server import FakeDiscord

    async with (
        FakeDiscord() as discord,
        FakeComfyUI(upscale_models=("4x-UltraSharp.pth",)) as comfy,
    ):
        settings = offline_settings(
            discord, tmp_path, COMFYUI_URL=comfy.url, IMAGEBOT_PROVIDER="comfyui"
        )
        running = await start_bot(settings)
        try:
            record = await discord.send_slash_command("generate", {"count": 2, "size": "64x64"})
            post = await posted_batch(discord, record, "the batch")
            [render] = comfy.prompts  # one server, two images: one batched prompt
            assert render["5"]["inputs"]["batch_size"] == 2
            u1 = next(
                i for i in post.custom_ids if i.startswith("ib:upscale:") and i.endswith(":1")
            )
            click = await discord.click_button(post, u1)
            [answer] = await discord.wait_for(
                lambda: (
                    [m for m in discord.messages_for_interaction(click.id) if m.attachments] or None
                ),
                what="the upscaled file",
            )
        finally:
            await stop_bot(running)
    [attachment] = answer.attachments
    assert attachment.filename == "1-upscaled.png" and "upscaled to 128x128" in answer.content
    assert size_of(attachment.data) == (128, 128)
    [upload] = comfy.uploads  # image 1 of the batch, exactly as it was posted
    assert comfy.files[f"input//{upload['name']}"] == post.attachments[0].data
    info = json.loads(next((tmp_path / "out").rglob("info.json")).read_text())
    assert info["upscales"][0]["upscaler"] == "4x-UltraSharp.pth (ComfyUI)"


async def test_a_server_that_goes_silent_mid_render_is_given_up_after_its_hang_time(
    session,
) -> None:
    notes: list[str] = []
    async with FakeComfyUI(stalled=True) as fake:
        provider = ComfyUIProvider(
            session, [fake.url], timeout=30.0, attempts=1, answer_timeout=0.5,
            watch_times=WatchTimes(answer=0.1, hang=1.0, poll=0.05),
        )  # fmt: skip

        def note(text: str) -> None:
            notes.append(text)
            if "running" in text:
                fake.frozen = True  # wedged while our prompt runs: the socket stays open, mute

        with pytest.raises(Unavailable) as raised:
            await provider.render(ask(7), progress=note)
    message = str(raised.value)
    assert f"ComfyUI at {fake.url.removeprefix('http://')} stopped answering" in message
    assert "no event and no answer for" in message and "budget" not in message
    assert any("no answer for" in text for text in notes if text.startswith("waiting for"))


async def test_without_a_websocket_progress_still_says_where_the_prompt_is(session) -> None:
    notes: list[str] = []
    async with FakeComfyUI(stalled=True) as fake:
        provider = ComfyUIProvider(
            session, [fake.url], timeout=1.0, attempts=1, use_websocket=False,
            watch_times=WatchTimes(answer=0.1, hang=0.5, poll=0.05),
        )  # fmt: skip
        with pytest.raises(Unavailable, match="did not finish within its 1.0 s budget"):
            await provider.render(ask(3), progress=notes.append)
    assert f"waiting for ComfyUI at {fake.url.removeprefix('http://')}: running seed 3" in notes
    assert not fake.logged("/ws")


async def test_one_failed_batch_keeps_the_other_servers_images(session) -> None:
    from imagebot.providers.batching import PartialRender

    async with FakeComfyUI() as first, FakeComfyUI() as second:
        first.fail_execution("CUDA out of memory")
        provider = ComfyUIProvider(session, [first.url, second.url], base_delay=0.01)
        with pytest.raises(PartialRender) as raised:
            await provider.render(ask(1, 2, 3, 4))
    kept = [image.seed for image in raised.value.images]
    assert kept in ([1, 2], [3, 4]) and raised.value.missing == 2
    assert "KSampler (node 3): CUDA out of memory" in str(raised.value)
    assert all(image.data.startswith(b"\x89PNG") for image in raised.value.images)
