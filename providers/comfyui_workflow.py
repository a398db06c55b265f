"""ComfyUI workflows: load and check API-format graphs, fill `{{name}}` placeholders, and put
the server's rejections and failures into one line for the user (data/comfyui/README.md)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from imagebot.providers.base import ConfigError
from imagebot.providers.content import DATA_DIR

WORKFLOW_DIR = DATA_DIR / "comfyui"
DEFAULT_WORKFLOW = WORKFLOW_DIR / "default_workflow.json"
IMG2IMG_WORKFLOW = WORKFLOW_DIR / "img2img_workflow.json"
UPSCALE_WORKFLOW = WORKFLOW_DIR / "upscale_workflow.json"  # {"model": graph, "resize": graph}
PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
PLACEHOLDERS = frozenset(
    {"prompt", "negative_prompt", "width", "height", "seed", "steps", "cfg", "sampler",
     "scheduler", "checkpoint", "batch_size"}
)  # fmt: skip
IMG2IMG_PLACEHOLDERS = PLACEHOLDERS | {"image", "strength"}
UPSCALE_PLACEHOLDERS = frozenset({"image", "upscale_model", "width", "height", "scale"})
REQUIRED_PLACEHOLDERS = ("prompt", "seed")  # without a seed every run would be the cached first
# Role packs name samplers the A1111 way ("DPM++ 2M Karras"); ComfyUI splits sampler/scheduler.
A1111_SAMPLERS = {
    "euler a": "euler_ancestral", "euler": "euler", "lms": "lms", "heun": "heun",
    "dpm2": "dpm_2", "dpm2 a": "dpm_2_ancestral", "dpm++ 2s a": "dpmpp_2s_ancestral",
    "dpm++ 2m": "dpmpp_2m", "dpm++ sde": "dpmpp_sde", "dpm++ 2m sde": "dpmpp_2m_sde",
    "dpm++ 3m sde": "dpmpp_3m_sde", "dpm fast": "dpm_fast", "dpm adaptive": "dpm_adaptive",
    "ddim": "ddim", "unipc": "uni_pc", "lcm": "lcm", "plms": "euler",
}  # fmt: skip
SCHEDULER_SUFFIXES = ("karras", "exponential", "sgm uniform", "simple")


def comfy_sampler(name: str) -> tuple[str, str]:
    """(sampler_name, scheduler) for an A1111-style or native ComfyUI sampler name."""
    text = name.strip()
    lowered = text.lower()
    scheduler = "normal"
    for suffix in SCHEDULER_SUFFIXES:
        if lowered.endswith(" " + suffix):
            scheduler = suffix.replace(" ", "_")
            lowered = lowered[: -len(suffix) - 1].strip()
            break
    return A1111_SAMPLERS.get(lowered, text if scheduler == "normal" else lowered), scheduler


def placeholders_in(template: Any) -> set[str]:
    """Every `{{name}}` used anywhere in a workflow."""
    if isinstance(template, dict):
        return set().union(*(placeholders_in(v) for v in template.values()))
    if isinstance(template, list):
        return set().union(*(placeholders_in(v) for v in template))
    if isinstance(template, str):
        return set(PLACEHOLDER.findall(template))
    return set()


def fill_workflow(template: Any, values: Mapping[str, Any]) -> Any:
    """`template` with placeholders filled; a value that is one placeholder keeps its type."""
    if isinstance(template, dict):
        return {key: fill_workflow(value, values) for key, value in template.items()}
    if isinstance(template, list):
        return [fill_workflow(value, values) for value in template]
    if isinstance(template, str):
        whole = PLACEHOLDER.fullmatch(template.strip())
        if whole:
            return values[whole.group(1)]  # "{{seed}}" -> 42, a number as ComfyUI's INT wants
        return PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), template)
    return template


def _read_json(path: Path, setting: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{setting}: cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ConfigError(f"{setting}: {path} is not valid JSON: {exc}") from None


def check_workflow(
    data: Any,
    where: str,
    setting: str,
    *,
    known: frozenset[str] = PLACEHOLDERS,
    required: Iterable[str] = REQUIRED_PLACEHOLDERS,
) -> dict[str, Any]:
    """`data` if it is an API-format graph using only `known` and all `required` placeholders."""
    if isinstance(data, dict) and "nodes" in data and "links" in data:
        raise ConfigError(
            f"{setting}: {where} is a ComfyUI UI workflow; save it with 'Export (API)' instead"
        )
    if not (
        isinstance(data, dict)
        and data
        and all(isinstance(node, dict) and "class_type" in node for node in data.values())
    ):
        raise ConfigError(
            f"{setting}: {where} is not an API-format workflow "
            "(a JSON object of nodes, each with class_type and inputs)"
        )
    used = placeholders_in(data)
    if unknown := sorted(used - known):
        raise ConfigError(
            f"{setting}: {where} uses unknown placeholder(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known))}"
        )
    if missing := [name for name in required if name not in used]:
        raise ConfigError(
            f"{setting}: {where} must contain "
            + " and ".join("{{" + name + "}}" for name in missing)
        )
    return data


def load_workflow(path: Path, setting: str = "COMFYUI_WORKFLOW") -> dict[str, Any]:
    """Read and check a text-to-image workflow; ConfigError names the setting and the problem."""
    return check_workflow(_read_json(path, setting), str(path), setting)


def load_img2img_workflow(path: Path = IMG2IMG_WORKFLOW) -> dict[str, Any]:
    """The shipped image-to-image graph (Vary): LoadImage → VAEEncode → KSampler(denoise)."""
    data = _read_json(path, "COMFYUI")
    return check_workflow(
        data, str(path), "COMFYUI", known=IMG2IMG_PLACEHOLDERS,
        required=("prompt", "seed", "image", "strength"),
    )  # fmt: skip


def load_upscale_workflows(path: Path = UPSCALE_WORKFLOW) -> dict[str, dict[str, Any]]:
    """The shipped upscale graphs: "model" (an upscale model) and "resize" (ImageScaleBy)."""
    data = _read_json(path, "COMFYUI")
    if not isinstance(data, dict) or set(data) != {"model", "resize"}:
        raise ConfigError(f"COMFYUI: {path} must hold the graphs 'model' and 'resize'")
    return {
        name: check_workflow(
            graph, f"{path} ({name})", "COMFYUI", known=UPSCALE_PLACEHOLDERS, required=("image",)
        )
        for name, graph in data.items()
    }


def rejection_message(body: str) -> str:
    """The user's line for a 400 from /prompt: {"error": {...}, "node_errors": {...}}."""
    try:
        data = json.loads(body)
    except ValueError:
        return f"the server rejected the workflow: {body.strip()[:300] or 'no details'}"
    error = data.get("error") if isinstance(data, dict) else None
    nodes = data.get("node_errors") if isinstance(data, dict) else None
    head = error.get("message") if isinstance(error, dict) else error
    problems = []
    for node_id, info in (nodes or {}).items() if isinstance(nodes, dict) else ():
        for problem in (info or {}).get("errors") or []:
            details = str(problem.get("details") or "")[:200]
            problems.append(
                f"{info.get('class_type', 'node')} (node {node_id}): "
                f"{problem.get('message', 'invalid')}" + (f": {details}" if details else "")
            )
    if not problems and isinstance(error, dict) and error.get("details"):
        problems.append(str(error["details"])[:300])
    text = f"the server rejected the workflow ({head or 'invalid prompt'})"
    if problems:
        text += ": " + "; ".join(problems)
    if "ckpt_name" in text:
        text += " (install that checkpoint on the server or set COMFYUI_CHECKPOINT to one it has)"
    return " ".join(text.split())  # one line, whatever the server's details held


def execution_error_message(data: Mapping[str, Any]) -> str:
    """The user's line for an `execution_error` websocket message or history entry."""
    where = f"{data.get('node_type') or 'a node'} (node {data.get('node_id', '?')})"
    text = str(data.get("exception_message") or data.get("exception_type") or "unknown error")
    return " ".join(f"the workflow failed in {where}: {text.strip()[:300]}".split())
