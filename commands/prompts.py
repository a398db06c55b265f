"""`prompts`: COUNT prompt specs without rendering, appended to a CSV and the index."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from imagebot.commands.catalog import CHAT_MAX_PROMPTS
from imagebot.commands.generate import (
    check_theme,
    clean_spec,
    parse_count,
    parse_prompt_source,
    parse_role,
)
from imagebot.commands.moderation import banned_match
from imagebot.commands.requester import CLI, Requester
from imagebot.providers.base import PromptRequest, PromptSpec, UsageError
from imagebot.storage.csv_io import PROMPT_COLUMNS, append_prompt_rows, csv_header
from imagebot.storage.index import iso, tags_json, utc_now

if TYPE_CHECKING:
    from imagebot.commands.config import CommandConfig
    from imagebot.commands.services import Services

CLI_MAX_PROMPTS = 1000


@dataclass(frozen=True)
class PromptsRequest:
    count: int
    prompt_source: str
    theme: str | None = None
    role: str | None = None
    requester: Requester = CLI
    seed: int | None = None


def parse_prompts(
    config: CommandConfig,
    *,
    count: object,
    theme: str | None = None,
    role: str | None = None,
    prompt_source: str | None = None,
    requester: Requester = CLI,
    maximum: int = CHAT_MAX_PROMPTS,
    seed: int | None = None,
) -> PromptsRequest:
    """Check every argument before any work (UsageError on the first bad one)."""
    return PromptsRequest(
        count=parse_count(count, maximum),
        prompt_source=parse_prompt_source(prompt_source, config),
        theme=check_theme(theme, config),
        role=parse_role(role),
        requester=requester,
        seed=seed,
    )


async def make_prompts(services: Services, request: PromptsRequest) -> list[PromptSpec]:
    """Prompt specs from the source, minus any whose words hit the banned list."""
    source = services.prompt_source(request.prompt_source)
    specs = await source.generate(
        PromptRequest(
            count=request.count, role=request.role, theme=request.theme, seed=request.seed
        )
    )
    patterns = services.config.banned_words
    specs = [clean_spec(spec) for spec in specs]
    kept = [s for s in specs if not banned_match([s.title, s.description, s.prompt], patterns)]
    now = iso(utc_now())
    services.index.record_prompts(
        [
            {
                "title": spec.title,
                "description": spec.description,
                "metatags": tags_json(spec.metatags),
                "prompt": spec.prompt,
                "role": spec.role,
                "theme": spec.theme,
                "prompt_source": spec.prompt_source,
                "prompt_model": spec.prompt_model,
                "created_at": now,
                "platform": request.requester.platform,
                "user_id": request.requester.user_id,
                "chat_id": request.requester.chat_id,
            }
            for spec in kept
        ]
    )
    return kept


def check_parent(path: Path, option: str) -> None:
    """A file the user named goes into a folder that exists: a typo never makes folders."""
    if not path.parent.is_dir():
        raise UsageError(f"{option} {path}: the folder {path.parent} does not exist; create it "
                         "first or choose another path")  # fmt: skip


def check_prompts_csv(path: Path, *, explicit: bool) -> None:
    """Refuse, before any work, to append prompt rows to a CSV with another header."""
    if explicit:
        check_parent(path, "--csv")
    header = csv_header(path)
    if header is not None and header != PROMPT_COLUMNS:
        raise UsageError(
            f"{path} is a CSV with the columns {','.join(header)}, not a prompts list "
            f"({','.join(PROMPT_COLUMNS)}); it was left unchanged: choose another --csv file"
        )


def append_to_csv(specs: list[PromptSpec], path: Path) -> None:
    """Add the specs to a batch_prompts.csv; earlier rows stay as they were."""
    append_prompt_rows(path, [spec.csv_row() for spec in specs])
