"""One storage suite, run on the SQLite file and on a real PostgreSQL server (a fresh database
per test): what the stores remember must read back the same on both."""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from imagebot.storage.archive import Archive
from imagebot.storage.chat_settings import ChatSettingsStore
from imagebot.storage.csv_io import EXPORT_COLUMNS, write_export
from imagebot.storage.daily import DailyStore
from imagebot.storage.index import Index
from imagebot.storage.jobs import JobStore
from imagebot.storage.opening import migrate_index, open_index
from imagebot.storage.owners import sweep
from imagebot.storage.posts import PostStore
from imagebot.web.gallery import Filters, Gallery

Opener = Callable[[], Index]


@pytest.fixture(params=["sqlite", "postgresql"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens the test's index (as many times as a test wants: each is a process's view)."""
    url = None
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
        migrate_index(tmp_path / "unused.db", url)
    opened: list[Index] = []

    def open_one() -> Index:
        opened.append(open_index(tmp_path / "archive.db", url))
        return opened[-1]

    yield open_one
    for index in opened:
        index.close()


@pytest.fixture
def index(opener: Opener) -> Index:
    return opener()


def batch(number: int, **fields: Any) -> dict[str, Any]:
    row = {
        "id": f"{number:08x}",
        "title": f"Batch {number}",
        "description": "a quiet harbour",
        "metatags": '["fog", "boats"]',
        "created_at": f"2026-11-{10 + number:02d}T08:00:00Z",
        "provider": "local",
        "role": "painter",
        "platform": "discord",
        "user_name": "ann",
        "user_id": "7",
        "chat_id": "5",
    }
    return {**row, **fields}


def archived(index: Index, number: int, status: str = "complete", **fields: Any) -> str:
    row = batch(number, **fields)
    index.start_batch(row)
    index.finish_batch(row["id"], status=status, error=None, folder=f"/o/{number}", image_count=4)
    return row["id"]


def export_csv(index: Index, **options: Any) -> list[list[str]]:
    out = io.StringIO()
    with index.reader() as conn:
        write_export(index.export_rows(conn, **options), out)
    return list(csv.reader(io.StringIO(out.getvalue())))


# ---------------------------------------------------------------- batches and prompts


def test_a_batch_is_rendering_until_finished_then_reads_back(index: Index) -> None:
    index.start_batch(batch(1, job_id="j1"))
    assert index.get_batch(batch(1)["id"])["status"] == "rendering"
    index.finish_batch(batch(1)["id"], status="partial", error="1 of 4 failed", image_count=3)
    row = index.get_batch(batch(1)["id"])
    assert (row["status"], row["error"], row["image_count"]) == ("partial", "1 of 4 failed", 3)
    assert row["title"] == "Batch 1" and row["metatags"] == '["fog", "boats"]'
    assert index.get_batch("00000000") is None
    assert [b["id"] for b in index.batches_of_job("j1")] == [batch(1)["id"]]


def test_the_export_joins_tags_labels_requesters_and_keeps_only_archived_batches(
    index: Index,
) -> None:
    archived(index, 1)
    archived(index, 2, platform="cli", user_name=None, user_id=None, metatags='["é", "x"]')
    archived(index, 3, status="failed")
    archived(index, 4, chat_id="6")
    rows = export_csv(index)
    assert rows[0] == EXPORT_COLUMNS
    assert [r[0] for r in rows[1:]] == ["Batch 1", "Batch 2", "Batch 4"]
    by = EXPORT_COLUMNS.index("requested_by")
    assert rows[1][2] == "fog, boats" and rows[1][by] == "discord:ann (7)"
    assert rows[2][2] == "é, x" and rows[2][by] == "cli"
    assert [r[0] for r in export_csv(index, since="2026-11-12")[1:]] == ["Batch 2", "Batch 4"]
    assert [r[0] for r in export_csv(index, platform="discord", chat_id="6")[1:]] == ["Batch 4"]


def test_batches_left_rendering_fail_and_a_deleted_post_says_who(index: Index) -> None:
    index.start_batch(batch(1, job_id="j1"))
    index.start_batch(batch(2, job_id="j1"))
    assert sorted(index.fail_rendering_batches("j1", "cancelled")) == sorted(
        [batch(1)["id"], batch(2)["id"]]
    )
    assert index.get_batch(batch(1)["id"])["error"] == "cancelled"
    assert index.fail_rendering_batches("j1", "again") == []
    index.mark_deleted(batch(2)["id"], "mod-9")
    row = index.get_batch(batch(2)["id"])
    assert row["deleted_by"] == "mod-9" and row["deleted_at"].endswith("Z")


def test_a_batch_of_a_process_that_is_gone_is_swept(index: Index, tmp_path: Path) -> None:
    index.start_batch(batch(1, owner="4242-deadbeef"))
    assert sweep(Archive(tmp_path / "output"), index) == [batch(1)["id"]]
    assert index.get_batch(batch(1)["id"])["status"] == "failed"


def test_prompt_lists_are_recorded(index: Index) -> None:
    rows = [{"title": f"P{n}", "prompt": "fog", "created_at": "2026-11-01T00:00:00Z"}
            for n in range(3)]  # fmt: skip
    index.record_prompts(rows)
    index.record_prompts([{"title": "P3", "prompt": "sea", "theme": "sea", "user_id": "7"}])
    found = list(index.db.query("select id, title, theme from prompts order by id"))
    assert [r["title"] for r in found] == ["P0", "P1", "P2", "P3"]
    assert found[3]["theme"] == "sea" and len({r["id"] for r in found}) == 4


# ---------------------------------------------------------------- jobs


def job(number: int, **fields: Any) -> dict[str, Any]:
    row = {"id": f"j{number}", "kind": "generate", "platform": "discord", "user_id": "7",
           "image_count": 4, "payload": {"theme": "fog"}, "reply": {"channel": 5},
           "created_at": f"2026-11-20T08:00:{number:02d}Z"}  # fmt: skip
    return {**row, **fields}


def test_jobs_move_through_their_states(index: Index) -> None:
    jobs = JobStore(index.db)
    for number in range(3):
        jobs.add(job(number))
    jobs.add(job(9, platform="telegram"))
    assert [j["id"] for j in jobs.unfinished(["discord"])] == ["j0", "j1", "j2"]
    assert jobs.get("j0")["payload"] == {"theme": "fog"} and jobs.get("j0")["result"] is None
    jobs.mark_running("j0")
    jobs.mark_running("j0")
    assert (jobs.get("j0")["status"], jobs.get("j0")["attempts"]) == ("running", 2)
    jobs.requeue("j0")
    assert jobs.get("j0")["status"] == "accepted"
    jobs.record_result("j1", {"batches": [{"id": "b1"}]})
    jobs.finish("j1", "done")
    jobs.finish("j2", "failed", error="no provider answered", answered=False)
    assert jobs.get("j1")["result"] == {"batches": [{"id": "b1"}]}
    assert jobs.get("j2")["error"] == "no provider answered"
    assert [j["id"] for j in jobs.unfinished(["discord", "telegram"])] == ["j0", "j9"]
    assert jobs.unfinished([]) == [] and jobs.get("nope") is None


def test_the_quota_counts_what_was_asked_and_not_given_back(index: Index) -> None:
    jobs = JobStore(index.db)
    jobs.add(job(1))
    jobs.add(job(2, image_count=2))
    jobs.add(job(3, image_count=8))
    jobs.add(job(4, user_id="8"))
    jobs.finish("j2", "done")
    jobs.finish("j3", "failed", error="boom")
    since = datetime(2026, 11, 20, tzinfo=UTC)
    assert jobs.images_since("discord", "7", since) == 6
    assert jobs.images_since("discord", "7", datetime(2026, 11, 21, tzinfo=UTC)) == 0
    assert jobs.images_since("telegram", "7", since) == 0


# ---------------------------------------------------------------- posts, daily, settings


def test_a_post_remembers_its_messages_until_taken(index: Index) -> None:
    posts = PostStore(index.db, "telegram")
    posts.remember(5, 100, [98, 99], batch_id="b1")
    posts.remember(5, 100, [97, 98, 99], batch_id="b2")  # the same post, posted again
    assert posts.batch_on(5, 100) == "b2" and posts.batch_on(5, 101) is None
    assert posts.take(5, 100) == [97, 98, 99]
    assert posts.take(5, 100) is None


def schedule(**fields: Any) -> dict[str, Any]:
    row = {"platform": "telegram", "chat_id": "5", "time_utc": "09:30", "count": 2,
           "provider": "local", "reply": {"chat_id": 5}}  # fmt: skip
    return {**row, **fields}


def test_daily_schedules_are_kept_one_per_chat(index: Index) -> None:
    daily = DailyStore(index.db)
    daily.upsert(schedule())
    saved = daily.upsert(schedule(time_utc="07:15", count=3))
    assert (saved["time_utc"], saved["count"], saved["reply"]) == ("07:15", 3, {"chat_id": 5})
    daily.upsert(schedule(chat_id="6", time_utc="06:00"))
    assert [s["chat_id"] for s in daily.all()] == ["6", "5"]
    due = daily.list_due(datetime(2026, 11, 20, 8, 0, tzinfo=UTC))
    assert [(s["chat_id"], slot.hour) for s, slot in due] == [("6", 6), ("5", 7)]
    assert daily.delete("telegram", "6") and not daily.delete("telegram", "6")
    assert daily.get("telegram", "6") is None


def test_a_daily_slot_is_claimed_once_across_processes(opener: Opener) -> None:
    first, second = opener(), opener()
    DailyStore(first.db).upsert(schedule())
    stores = [DailyStore(first.db), DailyStore(second.db)]
    start, wins = threading.Barrier(2), []

    def claim(store: DailyStore) -> None:
        start.wait()
        wins.append(store.claim("telegram:5", "2026-11-20", "painter"))

    threads = [threading.Thread(target=claim, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(wins) == [False, True]
    row = DailyStore(second.db).get("telegram", "5")
    assert (row["last_run_date"], row["last_role"]) == ("2026-11-20", "painter")
    assert not stores[1].claim("telegram:5", "2026-11-20", None)
    assert stores[1].claim("telegram:5", "2026-11-21", None)
    assert DailyStore(first.db).get("telegram", "5")["last_role"] == "painter"


def test_chat_settings_replace_and_clear(index: Index) -> None:
    store = ChatSettingsStore(index.db)
    assert store.get("discord", "5") == {} and store.get("discord", None) == {}
    store.put("discord", "5", {"size": "512x512", "count": 2}, by="mod")
    store.put("discord", "5", {"count": 3}, by="mod")
    assert store.get("discord", "5") == {"count": 3}
    assert store.get("telegram", "5") == {}
    store.put("discord", "5", {}, by="mod")
    assert store.get("discord", "5") == {}


# ---------------------------------------------------------------- the gallery


@pytest.fixture
def gallery(index: Index) -> Gallery:
    archived(index, 1, title="Foggy harbour", role="painter")
    archived(index, 2, title="Night market", description="lanterns", provider="horde")
    archived(index, 3, title="Harbourmaster", metatags='["portrait"]', platform="telegram",
             user_name="bob", user_id="8", role="photographer")  # fmt: skip
    archived(index, 4, title="Harbour lights", parent_id=batch(1)["id"], parent_image=2)
    archived(index, 5, title="Harbour failed", status="failed")
    return Gallery(index.db)


def titles(gallery: Gallery, **query: str) -> list[str]:
    return [card["title"] for card in gallery.page(Filters.parse(query)).cards]


def test_the_gallery_lists_archived_batches_newest_first(gallery: Gallery) -> None:
    assert titles(gallery) == ["Harbour lights", "Harbourmaster", "Night market", "Foggy harbour"]
    [card] = [c for c in gallery.page(Filters()).cards if c["title"] == "Foggy harbour"]
    assert card["tags"] == ["fog", "boats"] and card["image_count"] == 4


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"q": "harbour"}, ["Harbour lights", "Harbourmaster", "Foggy harbour"]),
        ({"q": "harbour lights"}, ["Harbour lights"]),
        ({"q": "harb portrait"}, []),  # only the last word is a prefix
        ({"q": "LANTERNS"}, ["Night market"]),
        ({"q": "portrait"}, ["Harbourmaster"]),
        ({"q": "harbour foggy"}, ["Foggy harbour"]),
        ({"q": "\"harbour' OR 1=1 --"}, []),
        ({"q": "harb", "platform": "telegram"}, ["Harbourmaster"]),
        ({"role": "photographer"}, ["Harbourmaster"]),
        ({"provider": "horde"}, ["Night market"]),
        ({"requester": "bob"}, ["Harbourmaster"]),
        ({"requester": "7", "since": "2026-11-12"}, ["Harbour lights", "Night market"]),
        ({"until": "2026-11-12"}, ["Night market", "Foggy harbour"]),
    ],
)
def test_search_and_filters_narrow_the_gallery(
    gallery: Gallery, query: dict[str, str], expected: list[str]
) -> None:
    assert titles(gallery, **query) == expected


def test_gallery_pages_facets_children_and_removal(index: Index, gallery: Gallery) -> None:
    for number in range(6, 40):
        archived(index, number, created_at=f"2026-12-01T00:{number:02d}:00Z")
    first, second = gallery.page(Filters()), gallery.page(Filters(page=2))
    assert first.has_next and not second.has_next
    assert len(first.cards) == 24 and len(second.cards) == 38 - 24
    assert gallery.facets()["provider"] == ["horde", "local"]
    assert gallery.facets()["platform"] == ["discord", "telegram"]
    assert [c["title"] for c in gallery.children(batch(1)["id"])] == ["Harbour lights"]
    assert gallery.batch(batch(4)["id"])["parent_image"] == 2
    assert gallery.batch("../etc") is None
    gallery.mark_removed(batch(2)["id"], "mod")
    assert "Night market" not in titles(gallery, q="night") + titles(gallery)


def test_the_queue_page_shows_unanswered_jobs_oldest_first(index: Index) -> None:
    jobs = JobStore(index.db)
    for number in range(3):
        jobs.add(job(number, user_name=f"u{number}"))
    jobs.mark_running("j1")
    jobs.finish("j2", "done")
    queue = Gallery(index.db).queue()
    assert [(j["id"], j["status"]) for j in queue] == [("j0", "accepted"), ("j1", "running")]


def test_the_postgresql_index_reconnects_after_its_connection_is_killed(
    postgres_url: str, tmp_path: Path
) -> None:
    import psycopg

    migrate_index(tmp_path / "unused.db", postgres_url)
    index = open_index(tmp_path / "unused.db", postgres_url)
    try:
        archived(index, 1)
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            pid = index.db.execute("select pg_backend_pid()").fetchall()[0][0]
            admin.execute("select pg_terminate_backend(%s, 10000)", [pid])  # waits for the end
        with pytest.raises(psycopg.OperationalError):
            index.get_batch(batch(1)["id"])  # the statement that meets the break fails...
        archived(index, 2)  # ...and the next ones work, on a new connection
        assert [r[0] for r in export_csv(index)[1:]] == ["Batch 1", "Batch 2"]
    finally:
        index.close()
