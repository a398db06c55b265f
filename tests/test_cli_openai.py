"""The command line against a loopback OpenAI: the LLM's spec lands in the archive and CSV."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagebot.bot.cli import main
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.threaded import FakeOnThread

SPEC = {
    "title": "Lanterns Over the Harbour",
    "description": "Paper lanterns glow over a fog-bound harbour at dawn.",
    "metatags": ["#Harbour", "fog", "lanterns", "dawn", "boats", "fog"],
}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    with FakeOnThread(lambda: FakeOpenAI(api_key="sk-test-secret-1234")) as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-1234")
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("IMAGEBOT_IMAGE_MODEL", "dall-e-3")
        yield server


def only_folder(output: Path) -> Path:
    [folder] = [p for p in output.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return folder


def test_gpt_spec_lands_in_info_json(tmp_path: Path, fake: FakeOpenAI, capsys) -> None:
    fake.queue_reply({"specs": [SPEC]})
    assert main(["generate", "2", "512x512", "--provider", "dalle"]) == 0, capsys.readouterr()
    info = json.loads((only_folder(tmp_path / "output") / "info.json").read_text("utf-8"))
    assert info["title"] == SPEC["title"] and info["description"] == SPEC["description"]
    assert info["metatags"] == ["harbour", "fog", "lanterns", "dawn", "boats"]
    assert info["prompt_source"] == "gpt" and info["prompt_model"]
    assert info["provider"] == "dalle" and info["model"] == "dall-e-3"
    assert info["size"] == "512x512" and info["rendered_size"] == "1024x1024"
    assert all(image["revised_prompt"] for image in info["images"])
    assert len(fake.image_requests) == 2  # dall-e-3 renders one image per call


def test_gpt_specs_land_in_the_csv(tmp_path: Path, fake: FakeOpenAI) -> None:
    fake.queue_reply({"specs": [SPEC]})
    assert main(["prompts", "1"]) == 0
    [row] = list(csv.DictReader((tmp_path / "output" / "batch_prompts.csv").open(newline="")))
    assert row["title"] == SPEC["title"]
    assert row["metatags"] == "harbour, fog, lanterns, dawn, boats"
    assert row["description"] in row["prompt"].lower() or "harbour" in row["prompt"].lower()


@pytest.mark.parametrize(
    "argv",
    [
        ["generate", "0", "--provider", "dalle"],
        ["generate", "2", "12x12", "--provider", "dalle"],
        ["generate", "2", "--provider", "dall-e"],
        ["prompts", "5000"],
    ],
)
def test_usage_error_calls_no_service(tmp_path: Path, fake: FakeOpenAI, argv, capsys) -> None:
    assert main(argv) == 2
    assert fake.requests == []
    assert not (tmp_path / "output").exists()
    assert capsys.readouterr().err.count("\n") == 1


def test_malformed_twice_is_one_clear_error(tmp_path: Path, fake: FakeOpenAI, capsys) -> None:
    fake.queue_reply("{not json", "still { not json")
    assert main(["generate", "1", "256x256", "--provider", "dalle"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("imagebot: failed: gpt") and err.count("\n") == 1
    assert "Traceback" not in err
    assert fake.image_requests == []


def test_refused_prompt_is_softened_then_reported(tmp_path: Path, fake: FakeOpenAI, capsys):
    spec = {**SPEC, "description": "A forbidden ritual in a fog-bound harbour at dawn."}
    rewrite = {"description": "A forbidden rite, told gently.", "metatags": SPEC["metatags"]}
    fake.queue_reply({"specs": [spec]}, rewrite)  # the rewrite is refused too
    assert main(["generate", "1", "256x256", "--provider", "dalle"]) == 1
    err = capsys.readouterr().err
    assert "refused" in err and "Traceback" not in err
    assert len(fake.image_requests) == 2  # the original, then one softened retry
    assert not list((tmp_path / "output").glob("2*"))


def test_hostile_llm_title_stays_inside_output(tmp_path: Path, fake: FakeOpenAI) -> None:
    fake.queue_reply({"specs": [{**SPEC, "title": "../../../etc/passwd 🌊"}]})
    assert main(["generate", "1", "256x256", "--provider", "dalle"]) == 0
    folder = only_folder(tmp_path / "output")
    assert folder.parent == tmp_path / "output"
    assert folder.name.endswith("-etc-passwd")


def test_key_never_reaches_errors_or_files(tmp_path: Path, fake: FakeOpenAI, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key-5678")
    assert main(["generate", "1", "256x256", "--provider", "dalle"]) == 1
    err = capsys.readouterr().err
    assert "OPENAI_API_KEY" in err
    assert "sk-wrong-key-5678" not in err and "sk-test-secret-1234" not in err
    for path in (tmp_path / "output").rglob("*"):
        if path.is_file():
            assert b"sk-wrong-key-5678" not in path.read_bytes()


def test_refused_prompt_rewritten_once_renders(tmp_path: Path, fake: FakeOpenAI) -> None:
    spec = {**SPEC, "description": "A forbidden ritual in a fog-bound harbour at dawn."}
    rewrite = {
        "description": "A quiet lantern festival in a harbour.",
        "metatags": ["fog", "boats", "sea", "dawn", "calm"],
    }
    fake.queue_reply({"specs": [spec]}, rewrite)
    assert main(["generate", "1", "256x256", "--provider", "dalle"]) == 0
    info = json.loads((only_folder(tmp_path / "output") / "info.json").read_text("utf-8"))
    assert "forbidden" in info["prompt"]
    assert "lantern festival" in info["softened_prompt"]
    assert info["images"][0]["revised_prompt"]
