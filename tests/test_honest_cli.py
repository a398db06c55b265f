"""What a new user sees when something is wrong: one line that names what to fix, the right
exit status, nothing created, and files that other tools can read."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from imagebot.bot.cli import main


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def test_an_unreachable_webui_is_said_once_and_no_fallback_is_claimed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STABLE_DIFFUSION_URL", "http://127.0.0.1:9")
    status, out, err = run(["generate", "2", "512x512", "--provider", "stable-diffusion"], capsys)
    assert status == 1 and out == ""
    failures = [line for line in err.splitlines() if "127.0.0.1:9" in line]
    assert len(failures) == 1  # one line, whether one batched request failed or two
    assert "rendered with" not in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"TELEGRAM_TOKEN": "garbage"}, "TELEGRAM_TOKEN"),
        ({"TELEGRAM_WEBHOOK_PORT": "99999"}, "TELEGRAM_WEBHOOK_PORT"),
    ],
)
def test_a_malformed_setting_is_one_line_naming_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, env: dict, names: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    status, _, err = run(["telegram"], capsys)
    assert status == 2 and err.count("\n") == 1 and names in err


def test_an_output_dir_that_is_a_file_is_named_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("IMAGEBOT_OUTPUT_DIR", str(blocker))
    status, _, err = run(["generate", "1", "64x64"], capsys)
    assert status == 2 and err.count("\n") == 1 and "IMAGEBOT_OUTPUT_DIR" in err
    assert blocker.read_text() == "x"


def test_an_index_that_is_a_folder_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGEBOT_DB", str(tmp_path))
    status, _, err = run(["prompts", "1"], capsys)
    assert status == 2 and err.count("\n") == 1 and "IMAGEBOT_DB" in err


def test_a_corrupt_index_is_named_and_never_overwritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = tmp_path / "output" / "archive.db"
    index.parent.mkdir()
    index.write_bytes(b"this is not a database" * 100)
    status, _, err = run(["generate", "1", "64x64"], capsys)
    assert status == 2 and err.count("\n") == 1 and "left untouched" in err
    assert "IMAGEBOT_DB" in err and "Traceback" not in err
    assert index.read_bytes() == b"this is not a database" * 100
    with pytest.raises(sqlite3.DatabaseError):
        sqlite3.connect(index).execute("select 1 from sqlite_master").fetchall()


def test_a_typo_in_a_setting_is_warned_once_with_the_real_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / ".env").write_text("IMAGEBOT_BANNED_WORD=gore\nthis line is broken\n")
    status, _, err = run(["prompts", "1"], capsys)
    assert status == 0
    lines = [line for line in err.splitlines() if "warning" in line]
    assert lines == [
        "imagebot: warning: .env line 2 is not NAME=value and is ignored",
        "imagebot: warning: IMAGEBOT_BANNED_WORD is not a setting and is ignored; "
        "did you mean IMAGEBOT_BANNED_WORDS?",
    ]


def test_batch_files_and_exports_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        assert main(["generate", "1", "64x64"]) == 0
        assert main(["export", "--out", str(tmp_path / "archive.csv")]) == 0
    finally:
        os.umask(old)
    [folder] = [p for p in (tmp_path / "output").iterdir() if p.is_dir() and p.name[0] != "."]
    for path in [*folder.iterdir(), tmp_path / "archive.csv"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


def test_prompts_refuse_to_append_to_a_csv_of_another_shape(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["generate", "1", "64x64"]) == 0
    export = tmp_path / "archive.csv"
    assert main(["export", "--out", str(export)]) == 0
    before = export.read_bytes()
    capsys.readouterr()
    status, _, err = run(["prompts", "2", "--csv", str(export)], capsys)
    assert status == 2 and err.count("\n") == 1 and "left unchanged" in err
    assert export.read_bytes() == before


@pytest.mark.parametrize("verb", [["prompts", "1", "--csv"], ["export", "--out"]])
def test_a_missing_folder_for_an_output_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], verb: list[str]
) -> None:
    target = tmp_path / "no-such-folder" / "file.csv"
    status, _, err = run([*verb, str(target)], capsys)
    assert status == 2 and "does not exist" in err and not target.parent.exists()


def test_prompts_take_a_seed_and_say_what_their_options_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = run(["prompts", "3", "--seed", "7", "--csv", str(tmp_path / "a.csv")], capsys)
    second = run(["prompts", "3", "--seed", "7", "--csv", str(tmp_path / "b.csv")], capsys)
    assert first[0] == second[0] == 0
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    with pytest.raises(SystemExit):
        main(["prompts", "--help"])
    helptext = capsys.readouterr().out
    assert "what the prompts should be about" in helptext and "role pack" in helptext


def test_the_offline_renderer_says_what_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(["generate", "2", "64x64"], capsys)
    assert status == 0
    assert err.count("procedural offline renders") == 1
    assert "HORDE_API_KEY=0000000000" in err and "--provider horde" in err
    folder = Path(out.strip())
    assert "procedural offline renders" in (folder / "info.md").read_text("utf-8")


def test_a_refused_telegram_token_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fakes.telegram_server import FakeTelegram
    from tests.fakes.threaded import FakeOnThread

    with FakeOnThread(lambda: FakeTelegram("42:TEST")) as fake:
        monkeypatch.setenv("TELEGRAM_TOKEN", "42:WRONG")
        monkeypatch.setenv("TELEGRAM_API_BASE", fake.base_url)
        status, _, err = run(["telegram"], capsys)
    assert status == 2 and "TELEGRAM_TOKEN was refused" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_an_unreachable_telegram_at_start_up_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEGRAM_TOKEN", "42:TEST")
    monkeypatch.setenv("TELEGRAM_API_BASE", "http://127.0.0.1:9")
    status, _, err = run(["telegram"], capsys)
    assert status == 1 and "cannot reach the Telegram Bot API at http://127.0.0.1:9" in err
    assert "Traceback" not in err
    assert [line for line in err.splitlines() if "imagebot: failed" in line]


def test_a_refused_discord_token_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fakes.discord_server import FakeDiscord
    from tests.fakes.threaded import FakeOnThread

    with FakeOnThread(FakeDiscord) as fake:
        monkeypatch.setenv("DISCORD_TOKEN", "not-the-token")
        monkeypatch.setenv("DISCORD_API_BASE", fake.api_base)
        status, _, err = run(["discord"], capsys)
    assert status == 2 and "DISCORD_TOKEN was refused" in err and "Traceback" not in err


def test_upscale_writes_image_n_at_twice_its_size_and_lists_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from PIL import Image

    monkeypatch.setenv("IMAGEBOT_OUTPUT_DIR", str(tmp_path / "output"))
    assert main(["generate", "2", "96x64"]) == 0
    folder = Path(capsys.readouterr().out.strip())
    status, out, err = run(["upscale", str(folder), "2"], capsys)
    assert status == 0, err
    assert Path(out.strip()) == folder / "2-upscaled.png"
    with Image.open(folder / "2-upscaled.png") as picture:
        assert picture.size == (192, 128)
    upscales = json.loads((folder / "info.json").read_text("utf-8"))["upscales"]
    assert [(u["image"], u["file"], u["upscaler"]) for u in upscales] == [
        (2, "2-upscaled.png", "local")
    ]
    status, _, err = run(["upscale", str(folder), "3"], capsys)
    assert status == 2 and "that batch has 2 images; there is no image 3" in err
