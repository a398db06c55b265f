"""What a Horde request may carry: sampler names, the anonymous key's limits, source images."""

from __future__ import annotations

import base64
import io
import math

from PIL import Image

from imagebot.providers.base import Size

ANON_MAX_SIDE_AREA = 576  # the Horde's floor for "max_res" before kudos are needed upfront
ANON_MAX_STEPS = 40  # model max_steps default in require_upfront_kudos()
SECOND_ORDER = {"k_heun", "k_dpm_2", "k_dpm_2_a", "k_dpmpp_2s_a", "k_dpmpp_sde"}
HORDE_SAMPLERS = {
    "euler a": "k_euler_a", "euler": "k_euler", "lms": "k_lms", "heun": "k_heun",
    "dpm2": "k_dpm_2", "dpm2 a": "k_dpm_2_a", "dpm++ 2s a": "k_dpmpp_2s_a",
    "dpm++ 2m": "k_dpmpp_2m", "dpm++ sde": "k_dpmpp_sde", "dpm++ 2m sde": "k_dpmpp_2m",
    "dpm fast": "k_dpm_fast", "dpm adaptive": "k_dpm_adaptive", "ddim": "DDIM",
    "lcm": "lcm", "unipc": "k_dpmpp_2m", "plms": "k_euler",
}  # fmt: skip
KNOWN_SAMPLERS = set(HORDE_SAMPLERS.values()) | {"dpmsolver"}
DEFAULT_STRENGTH = 0.55  # SPEC §6: how far a variation moves from its picture


def source_image(data: bytes) -> str:
    """A picture as the Horde's `source_image`: base64 of a lossless WebP of it."""
    with Image.open(io.BytesIO(data)) as image:
        if image.format == "WEBP":
            return base64.b64encode(data).decode()
        buffer = io.BytesIO()
        image.convert("RGBA" if "A" in image.getbands() else "RGB").save(
            buffer, format="WEBP", lossless=True, method=0
        )  # method 0: the fastest encoder, still lossless
    return base64.b64encode(buffer.getvalue()).decode()


def horde_sampler(name: str) -> tuple[str, bool]:
    """(sampler_name, karras) for an A1111-style or native Horde sampler name."""
    text = name.strip()
    lowered = text.lower()
    karras = lowered.endswith(" karras")
    lowered = lowered.removesuffix(" karras").strip()
    if text in KNOWN_SAMPLERS:
        return text, True
    return HORDE_SAMPLERS.get(lowered, "k_euler_a"), karras


def anonymous_limits(size: Size, steps: int, sampler: str) -> tuple[Size, int]:
    """The largest size and step count the Horde renders for the anonymous key, as it would."""
    limit = ANON_MAX_SIDE_AREA**2
    width, height = size.width, size.height
    if width * height > limit:
        # Same rule as the Horde's own downgrade: scale, snap down to 64, trim the long side.
        scale = math.sqrt(limit / (width * height))
        width = max(64, int(width * scale) // 64 * 64)
        height = max(64, int(height * scale) // 64 * 64)
        while width * height > limit:
            if width >= height:
                width -= 64
            else:
                height -= 64
    most = 10 if sampler == "lcm" else ANON_MAX_STEPS // (2 if sampler in SECOND_ORDER else 1)
    return Size(width, height), min(steps, most)
