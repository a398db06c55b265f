"""Where the shipped content lives: data/ and tuning/ inside the installed `imagebot` package."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def content_dir(name: str) -> Path:
    """`data` or `tuning` as a folder (both ship as plain files inside the package)."""
    return Path(str(files("imagebot").joinpath(name)))


DATA_DIR: Path = content_dir("data")
TUNING_DIR: Path = content_dir("tuning")
