"""The index's schema, as an ordered list of migrations (sqlite-utils Migrations).

Add a new function at the end to change the schema; never edit one that has shipped.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from imagebot.storage.sql import SchemaError

migrations = Migrations("imagebot")
KNOWN: list[str] = []  # every migration's name, in order


def migration(step: Callable[[Database], None]) -> Callable[[Database], None]:
    """Register a migration (sqlite-utils records it in _sqlite_migrations when applied)."""
    KNOWN.append(step.__name__)
    return migrations()(step)


def check_known(db: Database, path: Path) -> None:
    """SchemaError when the file was migrated by a newer imagebot (it has a migration this
    one does not know): opening it would risk someone's data."""
    unknown = [m.name for m in migrations.applied(db) if m.name not in KNOWN]
    if unknown:
        raise SchemaError(
            f"the index {path} was migrated by a newer imagebot (it has {unknown[-1]}, this "
            f"imagebot knows up to {KNOWN[-1]}): upgrade imagebot, or point IMAGEBOT_DB at "
            "another file"
        )


@migration
def m001_batches_and_prompts(db: Database) -> None:
    db["batches"].create(
        {
            "id": str,
            "folder": str,
            "title": str,
            "description": str,
            "metatags": str,
            "prompt": str,
            "negative_prompt": str,
            "prompt_source": str,
            "prompt_model": str,
            "provider": str,
            "model": str,
            "size": str,
            "rendered_size": str,
            "role": str,
            "theme": str,
            "status": str,  # rendering, complete, partial, failed
            "error": str,
            "image_count": int,
            "created_at": str,
            "platform": str,
            "user_id": str,
            "user_name": str,
            "chat_id": str,
            "guild_id": str,
            "job_id": str,
        },
        pk="id",
    )
    db["batches"].create_index(["created_at"])
    db["batches"].create_index(["platform", "chat_id", "created_at"])
    db["prompts"].create(
        {
            "id": int,
            "title": str,
            "description": str,
            "metatags": str,
            "prompt": str,
            "role": str,
            "theme": str,
            "prompt_source": str,
            "prompt_model": str,
            "created_at": str,
            "csv_path": str,
            "platform": str,
            "user_id": str,
            "chat_id": str,
        },
        pk="id",
    )


@migration
def m002_jobs(db: Database) -> None:
    db["jobs"].create(
        {
            "id": str,
            "kind": str,  # generate, prompts, daily
            "status": str,  # accepted, running, done, failed, cancelled
            "platform": str,
            "user_id": str,
            "user_name": str,
            "chat_id": str,
            "guild_id": str,
            "provider": str,
            "image_count": int,  # images asked: what the daily quota counts
            "payload": str,  # JSON: the validated arguments
            "reply": str,  # JSON: where and how to answer, even after a restart
            "result": str,  # JSON: what was answered
            "error": str,
            "attempts": int,
            "answered": int,  # 1 once the user was answered: never answer twice
            "created_at": str,
            "started_at": str,
            "finished_at": str,
        },
        pk="id",
    )
    db["jobs"].create_index(["status", "created_at"])
    db["jobs"].create_index(["platform", "user_id", "created_at"])


@migration
def m003_daily(db: Database) -> None:
    db["daily_schedules"].create(
        {
            "id": str,  # platform:chat_id
            "platform": str,
            "chat_id": str,
            "guild_id": str,
            "time_utc": str,  # HH:MM
            "provider": str,
            "size": str,
            "count": int,
            "created_by": str,
            "created_at": str,
            "last_run_date": str,  # YYYY-MM-DD of the last post made
            "last_role": str,  # the rotation never repeats a role two days running
        },
        pk="id",
    )


@migration
def m004_batch_jobs_and_deletion(db: Database) -> None:
    # The runtime finds a job's archived batches on resume (never render twice), and a
    # batch whose chat post was deleted keeps its files but says so.
    db["batches"].create_index(["job_id"])
    db["batches"].add_column("deleted_at", str)
    db["batches"].add_column("deleted_by", str)


@migration
def m005_daily_reply(db: Database) -> None:
    # Where a schedule posts: the adapter's own reply address of the `/daily set` command
    # (JSON), so a port can be rebuilt for the chat without knowing each platform's fields.
    db["daily_schedules"].add_column("reply", str)


@migration
def m006_posts(db: Database) -> None:
    # The chat messages one posted batch is made of (Telegram: the albums above the buttons
    # message), so deleting the post removes all of them, even after a restart.
    db["posts"].create(
        {
            "id": str,  # platform:chat_id:message_id of the message the buttons are on
            "parts": str,  # JSON list of the other message ids
            "created_at": str,
        },
        pk="id",
    )


@migration
def m007_chat_settings(db: Database) -> None:
    # Per-chat defaults set with /settings (provider, size, count, role, quota, spoiler).
    db["chat_settings"].create(
        {
            "id": str,  # platform:chat_id
            "platform": str,
            "chat_id": str,
            "settings": str,  # JSON object of key -> value, only the keys a moderator set
            "updated_by": str,
            "updated_at": str,
        },
        pk="id",
    )


@migration
def m008_batch_owner(db: Database) -> None:
    # Which process is making a batch (its lock in <output>/.owners): a batch left
    # 'rendering' by a process that is gone is marked failed at the next start.
    db["batches"].add_column("owner", str)


@migration
def m009_post_batch(db: Database) -> None:
    # The batch a posted message shows: a button pressed on it must be for that batch (button
    # data comes from the client and is not trusted).
    db["posts"].add_column("batch_id", str)


@migration
def m010_batch_search(db: Database) -> None:
    # The web gallery's full-text search over title, description and tags (FTS5). Existing
    # batches are indexed now; triggers keep the index in step with every later write.
    db["batches"].enable_fts(
        ["title", "description", "metatags"],
        fts_version="FTS5",
        create_triggers=True,
        tokenize="unicode61 remove_diacritics 2",
    )
    # The gallery's filters, newest first.
    for column in ("provider", "role", "platform"):
        db["batches"].create_index([column, "created_at"], if_not_exists=True)
    db["batches"].create_index(["user_name", "created_at"], if_not_exists=True)


@migration
def m011_batch_parent(db: Database) -> None:
    # A variation's parent batch and image (SPEC §4 `parent`): the web batch page links both ways.
    db["batches"].add_column("parent_id", str)
    db["batches"].add_column("parent_image", int)
    db["batches"].create_index(["parent_id"], if_not_exists=True)
