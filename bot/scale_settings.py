"""The settings of many processes (SPEC §9): a PostgreSQL URL, an S3 archive URL, shard sets."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from imagebot.bot.env_values import Secret, read_text
from imagebot.providers.base import ConfigError


@dataclass(frozen=True)
class Shards:
    """`DISCORD_SHARDS=I-J/N`: this process runs shards first..last of count."""

    first: int
    last: int
    count: int

    @property
    def ids(self) -> list[int]:
        return list(range(self.first, self.last + 1))

    def __str__(self) -> str:
        return f"{self.first}-{self.last}/{self.count}"


def read_database_url(env: Mapping[str, str], name: str) -> Secret | None:
    """A postgresql:// URL; kept secret, since it usually carries a password."""
    value = read_text(env, name)
    if value is None:
        return None
    if not re.match(r"^postgres(ql)?://", value):
        raise ConfigError(f"{name} must be a postgresql:// URL (user, password, host, database)")
    return Secret(value)


def read_archive_url(env: Mapping[str, str], name: str) -> str | None:
    """`s3://bucket/prefix` (the prefix may be empty)."""
    value = read_text(env, name)
    if value is None:
        return None
    match = re.fullmatch(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(/[^\s]*)?", value)
    if match is None:
        raise ConfigError(
            f"{name} must be s3://bucket/prefix (a bucket name of 3-63 lowercase letters, "
            f"digits, dots and hyphens), got {value!r}"
        )
    return value.rstrip("/")


def read_shards(env: Mapping[str, str], name: str) -> Shards | None:
    """`I-J/N` (or `I/N` for one shard), with 0 <= I <= J < N."""
    value = read_text(env, name)
    if value is None:
        return None
    match = re.fullmatch(r"(\d+)(?:-(\d+))?/(\d+)", value)
    shards = None
    if match:
        first, count = int(match[1]), int(match[3])
        last = int(match[2]) if match[2] is not None else first
        if 0 <= first <= last < count:
            shards = Shards(first, last, count)
    if shards is None:
        raise ConfigError(
            f"{name} must be I-J/N, the shards I to J of N with 0 <= I <= J < N "
            f"(e.g. 0-1/4), got {value!r}"
        )
    return shards
