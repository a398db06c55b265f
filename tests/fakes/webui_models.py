"""What the WebUI fake validates and draws: pydantic-like field checks, seeded PNGs, upscalers."""

from __future__ import annotations

import random
import zlib
from typing import Any

from aiohttp import web

SAMPLERS = (
    ("DPM++ 2M", ["k_dpmpp_2m"]),
    ("DPM++ SDE", ["k_dpmpp_sde"]),
    ("DPM++ 2M SDE", ["k_dpmpp_2m_sde"]),
    ("DPM++ 2S a", ["k_dpmpp_2s_a"]),
    ("Euler a", ["k_euler_a"]),
    ("Euler", ["k_euler"]),
    ("LMS", ["k_lms"]),
    ("Heun", ["k_heun"]),
    ("DPM2", ["k_dpm_2"]),
    ("DPM2 a", ["k_dpm_2_a"]),
    ("DDIM", []),
    ("UniPC", []),
)
# Since 1.9 a scheduler suffix on the sampler name ("DPM++ 2M Karras") is split off.
SCHEDULER_SUFFIXES = ("Karras", "Exponential", "SGM Uniform", "Uniform", "Polyexponential")
# The pydantic model types every field Optional[...]; these are the ones a client sends.
FIELD_TYPES: dict[str, str] = {
    "prompt": "str", "negative_prompt": "str", "styles": "list", "seed": "int",
    "subseed": "int", "subseed_strength": "float", "seed_resize_from_h": "int",
    "seed_resize_from_w": "int", "sampler_name": "str", "sampler_index": "str",
    "scheduler": "str", "batch_size": "int", "n_iter": "int", "steps": "int",
    "cfg_scale": "float", "width": "int", "height": "int", "restore_faces": "bool",
    "tiling": "bool", "enable_hr": "bool", "denoising_strength": "float", "eta": "float",
    "override_settings": "dict", "override_settings_restore_afterwards": "bool",
    "script_name": "str", "script_args": "list", "send_images": "bool", "save_images": "bool",
    "alwayson_scripts": "dict", "init_images": "list", "resize_mode": "int",
    "image_cfg_scale": "float", "include_init_images": "bool", "mask": "str",
}  # fmt: skip
DEFAULTS: dict[str, Any] = {
    "prompt": "", "negative_prompt": "", "seed": -1, "subseed": -1, "subseed_strength": 0,
    "sampler_name": None, "sampler_index": "Euler", "scheduler": None, "batch_size": 1,
    "n_iter": 1, "steps": 50, "cfg_scale": 7.0, "width": 512, "height": 512,
    "override_settings": None, "send_images": True, "save_images": False,
}  # fmt: skip
MAX_PIXELS = 2048 * 2048 * 2  # past this the fake "GPU" runs out of memory, as a real one would


def make_png(width: int, height: int, seed: int, text: str = "") -> bytes:
    """A real, small PNG of width x height whose colour follows the seed."""
    rng = random.Random(seed)
    pixel = bytes(rng.randrange(256) for _ in range(3))
    raw = b"".join(b"\x00" + pixel * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + b"\x08\x02\x00\x00\x00"
    extra = chunk(b"tEXt", b"parameters\x00" + text.encode("latin-1", "replace")) if text else b""
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + extra
        + chunk(b"IDAT", zlib.compress(raw, 1))
        + chunk(b"IEND", b"")
    )


def type_error(name: str, kind: str, value: Any) -> dict | None:
    """Pydantic v2 lax-mode check of one field; None when the value is acceptable."""
    if value is None:
        return None
    loc = ["body", name]
    if kind == "int":
        if isinstance(value, bool | int):
            return None
        if isinstance(value, float):
            if value.is_integer():
                return None
            msg = "Input should be a valid integer, got a number with a fractional part"
            return {"type": "int_from_float", "loc": loc, "msg": msg, "input": value}
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return None
        msg = "Input should be a valid integer, unable to parse string as an integer"
        return {"type": "int_parsing", "loc": loc, "msg": msg, "input": value}
    if kind == "float":
        if isinstance(value, bool | int | float):
            return None
        try:
            float(value)
            return None
        except (TypeError, ValueError):
            msg = "Input should be a valid number, unable to parse string as a number"
            return {"type": "float_parsing", "loc": loc, "msg": msg, "input": value}
    if kind == "str" and not isinstance(value, str):
        return {"type": "string_type", "loc": loc, "msg": "Input should be a valid string",
                "input": value}  # fmt: skip
    if kind == "bool" and not isinstance(value, bool) and value not in (0, 1):
        return {"type": "bool_type", "loc": loc, "msg": "Input should be a valid boolean",
                "input": value}  # fmt: skip
    if kind == "dict" and not isinstance(value, dict):
        return {"type": "dict_type", "loc": loc, "msg": "Input should be a valid dictionary",
                "input": value}  # fmt: skip
    if kind == "list" and not isinstance(value, list):
        return {"type": "list_type", "loc": loc, "msg": "Input should be a valid list",
                "input": value}  # fmt: skip
    return None


def http_exception(status: int, detail: str) -> web.Response:
    """How A1111's api_middleware answers an HTTPException or a crash."""
    body = {"error": "HTTPException", "detail": detail, "body": "", "errors": f"{status}: {detail}"}
    return web.json_response(body, status=status)


# GET /sdapi/v1/upscalers of a stock A1111 with the bundled ESRGAN models; "None" comes first.
UPSCALERS: tuple[tuple[str, int], ...] = (
    ("None", 4), ("Lanczos", 4), ("Nearest", 4), ("ESRGAN_4x", 4), ("LDSR", 4),
    ("R-ESRGAN 4x+", 4), ("R-ESRGAN 4x+ Anime6B", 4), ("ScuNET", 4), ("SwinIR_4x", 4),
)  # fmt: skip


def upscaler_items(names: tuple[tuple[str, int], ...]) -> list[dict[str, Any]]:
    """The upscalers list as A1111 answers it."""
    return [
        {"name": name, "model_name": None if name in ("None", "Lanczos", "Nearest") else name,
         "model_path": None, "model_url": None, "scale": scale}
        for name, scale in names
    ]  # fmt: skip


def resized_png(data: bytes, factor: float) -> tuple[bytes, int, int]:
    """`data` decoded and resized by `factor` (what extra-single-image does, minus the model)."""
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as opened:
        picture = opened.convert("RGB")
    size = (round(picture.width * factor), round(picture.height * factor))
    buffer = io.BytesIO()
    picture.resize(size, Image.Resampling.NEAREST).save(buffer, "PNG", compress_level=1)
    return buffer.getvalue(), size[0], size[1]


def render_info(
    args: dict, sampler: str, seeds: list[int], width: int, height: int, default_checkpoint: str
) -> dict[str, Any]:
    """The `info` A1111 returns (as a JSON string) beside the images."""
    checkpoint = (args.get("override_settings") or {}).get("sd_model_checkpoint")
    return {
        "prompt": args["prompt"],
        "all_prompts": [args["prompt"]] * len(seeds),
        "negative_prompt": args["negative_prompt"],
        "all_negative_prompts": [args["negative_prompt"]] * len(seeds),
        "seed": seeds[0],
        "all_seeds": seeds,
        "subseed": seeds[0] + 1,
        "all_subseeds": [s + 1 for s in seeds],
        "subseed_strength": args["subseed_strength"],
        "width": width,
        "height": height,
        "sampler_name": sampler,
        "cfg_scale": float(args["cfg_scale"]),
        "steps": int(args["steps"]),
        "batch_size": int(args["batch_size"]),
        "denoising_strength": args.get("denoising_strength"),
        "sd_model_name": (checkpoint or default_checkpoint).split(".")[0],
        "sd_model_hash": "6ce0161689",
        "index_of_first_image": 0,
        "infotexts": [f"{args['prompt']}\nSteps: {args['steps']}, Seed: {s}" for s in seeds],
        "styles": [],
        "clip_skip": 1,
    }
