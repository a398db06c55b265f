"""The fake ComfyUI's node catalogue: validating a prompt graph and running it on fake pictures.

Validation follows ComfyUI's execution.validate_prompt: unknown class_type is an
`invalid_prompt`, every required input must be there, a link is `[node_id, output_index]` to a
node whose output type matches (`return_type_mismatch`), widgets convert to their type
(`invalid_input_type`) and combos take one of their values (`value_not_in_list`).
"""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from PIL import Image

# class_type: (required inputs {name: type or tuple of allowed values}, output types)
Spec = tuple[dict[str, Any], tuple[str, ...]]
SCALE_METHODS = ("nearest-exact", "bilinear", "area", "bicubic", "lanczos")


def node_specs(checkpoints: tuple[str, ...], samplers: tuple[str, ...],
               schedulers: tuple[str, ...], inputs: tuple[str, ...],
               upscale_models: tuple[str, ...]) -> dict[str, Spec]:  # fmt: skip
    """What each node class takes and gives, as its INPUT_TYPES and RETURN_TYPES declare."""
    return {
        "CheckpointLoaderSimple": ({"ckpt_name": checkpoints}, ("MODEL", "CLIP", "VAE")),
        "CLIPTextEncode": ({"text": "STRING", "clip": "CLIP"}, ("CONDITIONING",)),
        "EmptyLatentImage": (
            {"width": "INT", "height": "INT", "batch_size": "INT"}, ("LATENT",)),
        "KSampler": ({"model": "MODEL", "seed": "INT", "steps": "INT", "cfg": "FLOAT",
                      "sampler_name": samplers, "scheduler": schedulers,
                      "positive": "CONDITIONING", "negative": "CONDITIONING",
                      "latent_image": "LATENT", "denoise": "FLOAT"}, ("LATENT",)),
        "VAEDecode": ({"samples": "LATENT", "vae": "VAE"}, ("IMAGE",)),
        "VAEEncode": ({"pixels": "IMAGE", "vae": "VAE"}, ("LATENT",)),
        "RepeatLatentBatch": ({"samples": "LATENT", "amount": "INT"}, ("LATENT",)),
        "LatentUpscale": ({"samples": "LATENT", "upscale_method": SCALE_METHODS,
                           "width": "INT", "height": "INT",
                           "crop": ("disabled", "center")}, ("LATENT",)),
        "LoadImage": ({"image": inputs}, ("IMAGE", "MASK")),
        "UpscaleModelLoader": ({"model_name": upscale_models}, ("UPSCALE_MODEL",)),
        "ImageUpscaleWithModel": (
            {"upscale_model": "UPSCALE_MODEL", "image": "IMAGE"}, ("IMAGE",)),
        "ImageScale": ({"image": "IMAGE", "upscale_method": SCALE_METHODS, "width": "INT",
                        "height": "INT", "crop": ("disabled", "center")}, ("IMAGE",)),
        "ImageScaleBy": ({"image": "IMAGE", "upscale_method": SCALE_METHODS,
                          "scale_by": "FLOAT"}, ("IMAGE",)),
        "SaveImage": ({"images": "IMAGE", "filename_prefix": "STRING"}, ()),
        "PreviewImage": ({"images": "IMAGE"}, ()),
    }  # fmt: skip


OUTPUT_NODES = ("SaveImage", "PreviewImage")
UPSCALE_MODEL_FACTOR = 4  # the fake's models are all 4x, like RealESRGAN_x4plus


def object_info(specs: Mapping[str, Spec], *, newer: bool) -> dict[str, Any]:
    """GET /object_info: every node's INPUT_TYPES, combos as [[...], {}] or the newer
    ["COMBO", {"options": [...]}]."""

    def spec(wanted: Any) -> list[Any]:
        if not isinstance(wanted, tuple):
            return [wanted, {}]
        return ["COMBO", {"options": list(wanted)}] if newer else [list(wanted), {}]

    return {
        name: {"input": {"required": {k: spec(v) for k, v in inputs.items()}},
               "input_order": {"required": list(inputs)}, "output": list(outputs),
               "name": name, "output_node": name in OUTPUT_NODES}
        for name, (inputs, outputs) in specs.items()
    }  # fmt: skip


def error(kind: str, message: str, details: str, **extra: Any) -> dict[str, Any]:
    """One validation error as ComfyUI words it."""
    return {"type": kind, "message": message, "details": details, "extra_info": extra}


def validate(prompt: Mapping[str, Any], specs: Mapping[str, Spec]) -> dict[str, Any] | None:
    """None for a graph ComfyUI would queue, else the body of its 400 answer."""
    for node_id, node in prompt.items():
        kind = node.get("class_type") if isinstance(node, dict) else None
        if kind not in specs:
            message = f"Cannot execute because node {kind} does not exist."
            return {"error": error("invalid_prompt", message, f"Node ID '#{node_id}'"),
                    "node_errors": {}}  # fmt: skip
    if not any(node["class_type"] in OUTPUT_NODES for node in prompt.values()):
        return {"error": error("prompt_no_outputs", "Prompt has no outputs", ""), "node_errors": []}
    node_errors: dict[str, Any] = {}
    for node_id, node in prompt.items():
        if problems := _node_problems(node, prompt, specs):
            node_errors[node_id] = {"errors": problems, "dependent_outputs": [],
                                    "class_type": node["class_type"]}  # fmt: skip
    if not node_errors:
        return None
    details = "\n".join(
        f"{e['message']}: {e['details']}" for n in node_errors.values() for e in n["errors"]
    )
    message = "Prompt outputs failed validation"
    return {"error": error("prompt_outputs_failed_validation", message, details),
            "node_errors": node_errors}  # fmt: skip


def _node_problems(
    node: dict[str, Any], prompt: Mapping[str, Any], specs: Mapping[str, Spec]
) -> list[dict[str, Any]]:
    inputs = node.get("inputs") or {}
    problems = []
    for name, wanted in specs[node["class_type"]][0].items():
        value = inputs.get(name)
        if value is None:
            problems.append(error("required_input_missing", "Required input is missing", name,
                                  input_name=name))  # fmt: skip
        elif isinstance(value, list):
            problems.extend(_link_problems(name, value, wanted, prompt, specs))
        elif isinstance(wanted, tuple):
            if value not in wanted:
                problems.append(error("value_not_in_list", "Value not in list",
                                      f"{name}: '{value}' not in {list(wanted)}",
                                      input_name=name, received_value=value))  # fmt: skip
        elif wanted in ("INT", "FLOAT", "STRING"):
            try:
                {"INT": int, "FLOAT": float, "STRING": str}[wanted](value)
            except (TypeError, ValueError):
                problems.append(error("invalid_input_type",
                                      f"Failed to convert an input value to a {wanted} value",
                                      f"{name}, {value}, invalid literal",
                                      input_name=name, received_value=value))  # fmt: skip
        else:  # a socket input given a plain value
            problems.append(error("bad_linked_input", "Bad linked input, must be a length-2 "
                                  "list of [string, int]", f"{name}, {value}",
                                  input_name=name))  # fmt: skip
    return problems


def _link_problems(
    name: str, link: list, wanted: Any, prompt: Mapping[str, Any], specs: Mapping[str, Spec]
) -> list[dict[str, Any]]:
    if len(link) != 2 or not isinstance(link[1], int) or str(link[0]) not in prompt:
        return [error("bad_linked_input", "Bad linked input, must be a length-2 list of "
                      "[string, int]", f"{name}, {link}", input_name=name)]  # fmt: skip
    outputs = specs[prompt[str(link[0])]["class_type"]][1]
    got = outputs[link[1]] if 0 <= link[1] < len(outputs) else None
    if got != wanted:
        return [error("return_type_mismatch", "Return type mismatch between linked nodes",
                      f"{name}, received_type({got}) mismatch input_type({wanted})",
                      input_name=name)]  # fmt: skip
    return []


def picture(width: int, height: int, seed: int) -> Image.Image:
    """A flat picture whose colour follows the seed (so each image of a batch differs)."""
    return Image.new("RGB", (width, height), (seed * 37 % 256, seed * 91 % 256, seed * 53 % 256))


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


Sampler = Callable[[str, dict[str, Any], int], Awaitable[None]]  # (node id, inputs, batch size)
Visit = Callable[[str], Awaitable[None]]  # "executing" this node


async def execute(
    prompt: Mapping[str, Any], files: Mapping[str, bytes], sample: Sampler, visit: Visit
) -> dict[str, list[Image.Image]]:
    """Run the graph from its output nodes; the pictures each output node was given."""
    done: dict[str, tuple] = {}

    async def value(link: Any) -> Any:
        return (await run(str(link[0])))[link[1]] if isinstance(link, list) else link

    async def run(node_id: str) -> tuple:
        if node_id in done:
            return done[node_id]
        node = prompt[node_id]
        args = {name: await value(v) for name, v in (node.get("inputs") or {}).items()}
        await visit(node_id)
        done[node_id] = await _node(node["class_type"], node_id, args, files, sample)
        return done[node_id]

    results = {}
    for node_id, node in prompt.items():
        if node["class_type"] in OUTPUT_NODES:
            results[node_id] = list((await run(node_id))[0])
    return results


async def _node(kind: str, node_id: str, args: dict[str, Any], files: Mapping[str, bytes],
                sample: Sampler) -> tuple:  # fmt: skip
    if kind == "CheckpointLoaderSimple":
        return ("model", "clip", "vae")
    if kind == "CLIPTextEncode":
        return (args["text"],)
    if kind == "EmptyLatentImage":
        return ({"width": int(args["width"]), "height": int(args["height"]),
                 "batch": int(args["batch_size"])},)  # fmt: skip
    if kind == "VAEEncode":
        first = args["pixels"][0]
        return ({"width": first.width, "height": first.height, "batch": len(args["pixels"])},)
    if kind == "RepeatLatentBatch":
        latent = args["samples"]
        return ({**latent, "batch": latent["batch"] * int(args["amount"])},)
    if kind == "KSampler":
        latent = args["latent_image"]
        await sample(node_id, args, latent["batch"])
        return ({**latent, "seed": int(args["seed"])},)
    if kind == "LatentUpscale":
        return ({**args["samples"], "width": int(args["width"]), "height": int(args["height"])},)
    if kind == "VAEDecode":
        latent = args["samples"]
        seed = latent.get("seed", 0)
        return ([picture(latent["width"], latent["height"], seed + i)
                 for i in range(latent["batch"])],)  # fmt: skip
    if kind == "LoadImage":
        with Image.open(io.BytesIO(files[f"input//{args['image']}"])) as opened:
            return ([opened.convert("RGB")], "mask")
    if kind == "UpscaleModelLoader":
        return (args["model_name"],)
    if kind == "ImageUpscaleWithModel":
        return ([_resized(i, i.width * UPSCALE_MODEL_FACTOR, i.height * UPSCALE_MODEL_FACTOR)
                 for i in args["image"]],)  # fmt: skip
    if kind == "ImageScale":
        return ([_resized(i, int(args["width"]), int(args["height"])) for i in args["image"]],)
    if kind == "ImageScaleBy":
        factor = float(args["scale_by"])
        return ([_resized(i, round(i.width * factor), round(i.height * factor))
                 for i in args["image"]],)  # fmt: skip
    if kind in OUTPUT_NODES:
        return (args["images"],)
    raise ValueError(f"the fake cannot run {kind}")


def _resized(image: Image.Image, width: int, height: int) -> Image.Image:
    return image.resize((width, height), Image.Resampling.NEAREST)
