"""What the gallery and the batch page read from the index: pages of batches newest first,
filtered and searched (SQLite FTS5 or PostgreSQL text search), one batch with its parent and
children, the waiting queue. Portable SQL through storage.sql; the search is the dialect's."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from imagebot.providers.base import UsageError
from imagebot.storage.index import iso, utc_now
from imagebot.storage.sql import Sql

PAGE_SIZE = 24
MAX_PAGE = 10_000
BATCH_ID = re.compile(r"[0-9a-f]{6,32}")
SHOWN = "status in ('complete', 'partial') and deleted_at is null"
SHOWN_B = "b.status in ('complete', 'partial') and b.deleted_at is null"
CARD_COLUMNS = "b.rowid, b.id, b.title, b.provider, b.role, b.platform, b.user_name, " \
    "b.created_at, b.image_count, b.metatags"  # fmt: skip
FACETS_TTL = 30.0
WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Filters:
    """The gallery's query string, validated: each value is plain text or absent."""

    q: str = ""
    role: str = ""
    provider: str = ""
    requester: str = ""
    platform: str = ""
    since: str = ""  # YYYY-MM-DD, inclusive
    until: str = ""  # YYYY-MM-DD, inclusive
    page: int = 1

    @classmethod
    def parse(cls, query: Any) -> Filters:
        """From a request's query; UsageError (400) for a bad date or page."""
        values = {name: str(query.get(name, "")).strip()[:200] for name in
                  ("q", "role", "provider", "requester", "platform", "since", "until")}  # fmt: skip
        for name in ("since", "until"):
            if values[name]:
                try:
                    values[name] = date.fromisoformat(values[name]).isoformat()
                except ValueError:
                    raise UsageError(f"{name} must be a date as YYYY-MM-DD") from None
        raw_page = str(query.get("page", "1")).strip() or "1"
        if not raw_page.isdigit() or not 1 <= int(raw_page) <= MAX_PAGE:
            raise UsageError(f"page must be a whole number from 1 to {MAX_PAGE}")
        return cls(**values, page=int(raw_page))

    def link(self, **changes: Any) -> str:
        """This query string with `changes` (page numbers, a cleared filter)."""
        from urllib.parse import urlencode

        values = {**vars(self), **changes}
        pairs = {k: v for k, v in values.items() if v and not (k == "page" and v == 1)}
        return "/?" + urlencode(pairs) if pairs else "/"

    @property
    def active(self) -> bool:
        return any(v for k, v in vars(self).items() if k != "page")


def search_words(text: str) -> list[str]:
    """The words searched for (at most 12): letters and digits only, so no query syntax."""
    return WORD.findall(text)[:12]


@dataclass
class Page:
    cards: list[dict[str, Any]]
    has_next: bool


@dataclass
class Gallery:
    """Read-only queries over the shared index connection (each well under 50 ms at 100k)."""

    db: Sql
    _facets: tuple[float, dict[str, list[str]]] | None = field(default=None, repr=False)

    def page(self, filters: Filters) -> Page:
        clauses, params = [SHOWN_B], []
        for column in ("role", "provider", "platform"):
            value = getattr(filters, column)
            if value:
                clauses.append(f"b.{column} = ?")
                params.append(value)
        if filters.requester:
            clauses.append("(b.user_name = ? or b.user_id = ?)")
            params += [filters.requester, filters.requester]
        if filters.since:
            clauses.append("b.created_at >= ?")
            params.append(filters.since)
        if filters.until:
            clauses.append("b.created_at < ?")
            params.append((date.fromisoformat(filters.until) + timedelta(days=1)).isoformat())
        offset = (filters.page - 1) * PAGE_SIZE
        words = search_words(filters.q)
        join, order = "", "b.created_at desc, b.rowid desc"
        if words:
            search = self.db.search(words)
            join, order = search.join, search.order
            clauses.insert(0, search.where)
            params.insert(0, search.term)
        sql = (f"select {CARD_COLUMNS} from batches b {join} where {' and '.join(clauses)} "
               f"order by {order} limit ? offset ?")  # fmt: skip
        rows = list(self.db.query(sql, [*params, PAGE_SIZE + 1, offset]))
        for row in rows:
            row["tags"] = _tags(row.pop("metatags"))
        return Page(rows[:PAGE_SIZE], len(rows) > PAGE_SIZE)

    def facets(self) -> dict[str, list[str]]:
        """The values the filter menus offer, cached for a few seconds."""
        now = time.monotonic()
        if self._facets is not None and now - self._facets[0] < FACETS_TTL:
            return self._facets[1]
        found = {}
        for column in ("role", "provider", "platform"):
            sql = f"select distinct {column} as v from batches where {column} is not null " \
                f"and {column} != '' order by v limit 100"  # fmt: skip
            found[column] = [row["v"] for row in self.db.query(sql)]
        self._facets = (now, found)
        return found

    def batch(self, batch_id: str) -> dict[str, Any] | None:
        """One batch row, or None (an id of the wrong form is never looked up)."""
        if not BATCH_ID.fullmatch(batch_id):
            return None
        rows = list(self.db.query("select * from batches where id = ?", [batch_id]))
        return rows[0] if rows else None

    def children(self, batch_id: str) -> list[dict[str, Any]]:
        """Variations made from this batch (the index records their parent since m011)."""
        sql = f"select id, title, created_at from batches where parent_id = ? and {SHOWN} " \
            "order by created_at limit 100"  # fmt: skip
        return list(self.db.query(sql, [batch_id]))

    def queue(self) -> list[dict[str, Any]]:
        """Jobs waiting or running, oldest first (the moderator's queue page)."""
        sql = ("select id, kind, status, platform, user_name, provider, image_count, "
               "created_at, started_at from jobs where status in ('accepted', 'running') "
               "and answered = 0 order by created_at, rowid limit 500")  # fmt: skip
        return list(self.db.query(sql))

    def mark_removed(self, batch_id: str, by: str) -> None:
        """A moderator deleted the batch from the archive: the row stays, saying so."""
        with self.db.writing():
            self.db.execute(
                "update batches set status = 'deleted', deleted_at = ?, deleted_by = ? "
                "where id = ?",
                [iso(utc_now()), by, batch_id],
            )


def _tags(raw: str | None) -> list[str]:
    try:
        tags = json.loads(raw or "[]")
    except ValueError:
        return []
    return [str(tag) for tag in tags] if isinstance(tags, list) else []


def tags_of(row: dict[str, Any]) -> list[str]:
    return _tags(row.get("metatags"))


def inside(root: Path, candidate: Path) -> Path | None:
    """`candidate` resolved, when it lies inside `root` (symlinks followed); else None."""
    try:
        resolved = candidate.resolve(strict=True)
        resolved.relative_to(root.resolve())
    except (OSError, ValueError):
        return None
    return resolved
