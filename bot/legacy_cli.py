"""The original tool's command line: `python main.py 10 1024x576 --stable-diffusion`.

COUNT [SIZE] [--dalle | --stable-diffusion | --stability | --comfyui | --horde | --local]
[--only-prompts]. When several provider flags are given the first wins.
"""

from __future__ import annotations

import re

from imagebot.providers.catalog import PROVIDER_IDS

SIZE = re.compile(r"^\d+[xX]\d+$")
FLAGS = {f"--{name}": name for name in PROVIDER_IDS}


def translate(argv: list[str]) -> list[str]:
    """Turn the original arguments into an `imagebot` command line."""
    provider = next((FLAGS[arg] for arg in argv if arg in FLAGS), None)
    rest = [arg for arg in argv if arg not in FLAGS]
    if "--only-prompts" in rest:
        rest.remove("--only-prompts")
        # The original accepted a SIZE here too; prompts have no size, so it is dropped.
        return ["prompts", *(arg for arg in rest if not SIZE.match(arg))]
    return ["generate", *rest, *(["--provider", provider] if provider else [])]
