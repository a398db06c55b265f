"""ComfyUIProvider against a loopback fake ComfyUI: workflow filling, websocket, errors, pool."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from imagebot.providers.base import ConfigError, ProviderError, RenderRequest, Size, Unavailable
from imagebot.providers.catalog import ProviderOptions
from imagebot.providers.comfyui import ComfyUIProvider, comfy_sampler, fill_workflow
from tests.fakes.comfyui_server import FakeComfyUI


@pytest.fixture
async def fake() -> AsyncIterator[FakeComfyUI]:
    async with FakeComfyUI() as server:
        yield server


def request(seeds: tuple[int, ...] = (11,), **settings: object) -> RenderRequest:
    return RenderRequest(
        prompt="a foggy harbour at dawn",
        negative_prompt="blurry, text",
        size=Size(640, 384),
        seeds=seeds,
        settings={"steps": 6, "cfg_scale": 6.5, "sampler": "DPM++ 2M Karras", **settings},
    )


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG"), "not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


async def test_default_workflow_is_filled_and_images_come_back_in_seed_order(session, fake):
    provider = ComfyUIProvider(session, [fake.url], checkpoint="sd_xl_base_1.0.safetensors")
    images = await provider.render(request(seeds=(11, 12, 13)))

    assert [image.seed for image in images] == [11, 12, 13]
    assert all(png_size(image.data) == (640, 384) and image.format == "png" for image in images)
    # each image is its own (the fake colours image i of a batch by seed + i)
    assert len({image.data for image in images}) == 3
    [workflow] = fake.prompts  # one server: one batched prompt
    assert workflow["3"]["inputs"]["seed"] == 11
    assert workflow["6"]["inputs"]["text"] == "a foggy harbour at dawn"
    assert workflow["7"]["inputs"]["text"] == "blurry, text"
    assert workflow["5"]["inputs"] == {"width": 640, "height": 384, "batch_size": 3}
    sampler = workflow["3"]["inputs"]
    assert (sampler["steps"], sampler["cfg"]) == (6, 6.5)
    assert (sampler["sampler_name"], sampler["scheduler"]) == ("dpmpp_2m", "karras")
    assert workflow["4"]["inputs"]["ckpt_name"] == "sd_xl_base_1.0.safetensors"


async def test_checkpoint_defaults_to_the_first_the_server_offers(session, fake):
    fake.newer_object_info = True
    provider = ComfyUIProvider(session, [fake.url])
    await provider.render(request())
    assert fake.prompts[0]["4"]["inputs"]["ckpt_name"] == fake.checkpoints[0]
    assert provider.model == fake.checkpoints[0]


async def test_websocket_progress_reaches_the_callback(session, fake):
    seen: list[str] = []

    async def progress(text: str) -> None:
        seen.append(text)

    provider = ComfyUIProvider(session, [fake.url])
    await provider.render(request(steps=4), progress=progress)
    assert "ComfyUI: seed 11, step 4/4" in seen
    assert fake.logged("/ws")[0].query["clientId"]


async def test_without_websocket_history_is_polled(session, fake):
    provider = ComfyUIProvider(session, [fake.url], use_websocket=False, poll_interval=0.01)
    images = await provider.render(request(seeds=(5,)))
    assert png_size(images[0].data) == (640, 384)
    assert not fake.logged("/ws")
    assert fake.logged("/history/" + next(iter(fake.history)))


async def test_missing_checkpoint_names_the_node_and_the_fix(session, fake):
    provider = ComfyUIProvider(session, [fake.url], checkpoint="dreamshaper_8.safetensors")
    with pytest.raises(ProviderError) as caught:
        await provider.render(request())
    message = str(caught.value)
    assert "CheckpointLoaderSimple (node 4)" in message
    assert "Value not in list" in message and "dreamshaper_8.safetensors" in message
    assert "COMFYUI_CHECKPOINT" in message
    assert not isinstance(caught.value, Unavailable)
    assert not fake.prompts


async def test_execution_error_is_reported_with_the_node(session, fake):
    fake.fail_execution("CUDA out of memory. Tried to allocate 2.00 GiB")
    provider = ComfyUIProvider(session, [fake.url])
    with pytest.raises(ProviderError, match=r"KSampler \(node 3\): CUDA out of memory"):
        await provider.render(request())


async def test_user_workflow_file_is_used(session, fake, tmp_path: Path):
    workflow = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "{{checkpoint}}"}},
        "2": {"class_type": "CLIPTextEncode",
              "inputs": {"text": "masterpiece, {{prompt}}", "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode",
              "inputs": {"text": "{{negative_prompt}}", "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage",
              "inputs": {"width": "{{width}}", "height": "{{height}}", "batch_size": 1}},
        "5": {"class_type": "KSampler",
              "inputs": {"seed": "{{seed}}", "steps": 3, "cfg": 2.0, "sampler_name": "lcm",
                         "scheduler": "sgm_uniform", "denoise": 1, "model": ["1", 0],
                         "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0]}},
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
        "7": {"class_type": "PreviewImage", "inputs": {"images": ["6", 0]}},
    }  # fmt: skip
    path = tmp_path / "lcm.json"
    path.write_text(json.dumps(workflow))
    options = ProviderOptions(comfyui_urls=(fake.url,), comfyui_workflow=path)
    provider = ComfyUIProvider.from_options(options, session)
    images = await provider.render(request(seeds=(99,)))

    sent = fake.prompts[0]
    assert sent["2"]["inputs"]["text"] == "masterpiece, a foggy harbour at dawn"
    assert sent["5"]["inputs"]["seed"] == 99 and sent["5"]["inputs"]["steps"] == 3
    assert sent["4"]["inputs"]["width"] == 640
    assert png_size(images[0].data) == (640, 384)  # a PreviewImage's temp file works too


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        ('{"nodes": [], "links": []}', "Export (API)"),
        ('{"1": {"class_type": "KSampler", "inputs": {"seed": 1}}}', "{{prompt}} and {{seed}}"),
        ('{"1": {"class_type": "X", "inputs": {"t": "{{prompt}} {{seed}} {{colour}}"}}}',
         "unknown placeholder(s) colour"),
        ("not json", "not valid JSON"),
    ],
)  # fmt: skip
async def test_a_bad_workflow_file_is_a_config_error_naming_the_setting(
    session, tmp_path: Path, content: str, complaint: str
):
    path = tmp_path / "workflow.json"
    path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        ComfyUIProvider(session, ["http://127.0.0.1:9"], workflow_path=path)
    assert "COMFYUI_WORKFLOW" in str(caught.value) and complaint in str(caught.value)


async def test_a_dead_server_fails_over_to_the_next(session):
    async with FakeComfyUI() as dead, FakeComfyUI() as alive:
        await dead.kill()
        provider = ComfyUIProvider(session, [dead.url, alive.url])
        images = await provider.render(request(seeds=(1, 2)))
    assert [image.seed for image in images] == [1, 2]
    assert len(alive.prompts) == 2


async def test_a_server_error_is_unavailable_after_retries(session, fake):
    fake.fail_next(2, "500")
    provider = ComfyUIProvider(session, [fake.url])
    with pytest.raises(Unavailable, match="HTTP 500"):
        await provider.render(request())


def test_placeholders_keep_numbers_numbers_and_samplers_map():
    filled = fill_workflow(
        {"a": "{{seed}}", "b": ["x {{seed}}", "{{ cfg }}"]}, {"seed": 7, "cfg": 1.5}
    )
    assert filled == {"a": 7, "b": ["x 7", 1.5]}
    assert comfy_sampler("Euler a") == ("euler_ancestral", "normal")
    assert comfy_sampler("dpmpp_2m_sde") == ("dpmpp_2m_sde", "normal")
    assert comfy_sampler("DPM++ SDE Karras") == ("dpmpp_sde", "karras")


async def test_cancelling_drops_the_prompt_from_the_server(session, fake):
    fake.step_delay = 0.02
    provider = ComfyUIProvider(session, [fake.url], batching=False)  # two prompts: one waits
    task = asyncio.create_task(provider.render(request(seeds=(1, 2), steps=500)))
    while not any(e["type"] == "progress" for e in fake.ws_sent):
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    deleted = {pid for r in fake.logged("/queue", "POST") for pid in r.json["delete"]}
    interrupted = [r.json["prompt_id"] for r in fake.logged("/interrupt", "POST")]
    running = [pid for pid in deleted if pid in interrupted]
    assert len(deleted) == 2 and len(running) == 1  # the waiting one dropped, the running stopped
    while not fake.history:  # the fake's GPU notices the interrupt at its next step
        await asyncio.sleep(0.01)
    (entry,) = fake.history.values()
    assert entry["status"]["messages"][-1][0] == "execution_interrupted"
