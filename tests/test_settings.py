"""Settings: read once, validated, one line naming the variable, secrets masked."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagebot.bot.settings import Secret, Settings
from imagebot.providers.base import ConfigError


def test_defaults_run_offline() -> None:
    settings = Settings.from_env({}, dotenv_path=None)
    assert settings.default_provider == "local"
    assert settings.prompt_source == "templates"
    assert settings.max_images == 10
    assert settings.daily_quota == 100
    assert settings.db_path == Path("output") / "archive.db"
    assert settings.horde_api_key.reveal() == "0000000000"


def test_first_configured_provider_is_default_and_gpt_when_openai_set() -> None:
    settings = Settings.from_env(
        {"STABILITY_API_KEY": "sk-x", "STABLE_DIFFUSION_URL": "http://127.0.0.1:7860/"},
        dotenv_path=None,
    )
    assert settings.default_provider == "stable-diffusion"
    assert settings.stable_diffusion_urls == ("http://127.0.0.1:7860",)
    assert (
        Settings.from_env(
            {"OPENAI_BASE_URL": "http://127.0.0.1:1/v1"}, dotenv_path=None
        ).prompt_source
        == "gpt"
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("IMAGEBOT_MAX_IMAGES", "ten"),
        ("IMAGEBOT_MAX_IMAGES", "0"),
        ("IMAGEBOT_DAILY_QUOTA", "-1"),
        ("IMAGEBOT_PROVIDER", "midjourney"),
        ("IMAGEBOT_PROMPT_SOURCE", "oracle"),
        ("STABLE_DIFFUSION_URL", "127.0.0.1:7860"),
        ("IMAGEBOT_FALLBACK", "local,nope"),
        ("IMAGEBOT_ALLOWED_USERS", "alice"),
        ("IMAGEBOT_BANNED_WORDS", "/[unclosed/"),
        ("COMFYUI_WORKFLOW", "/no/such/workflow.json"),
        ("IMAGEBOT_DATABASE_URL", "mysql://db/imagebot"),
        ("IMAGEBOT_ARCHIVE_URL", "/srv/archive"),
        ("IMAGEBOT_ARCHIVE_URL", "s3://Bad_Bucket/x"),
        ("DISCORD_SHARDS", "2-1/4"),
        ("DISCORD_SHARDS", "0-4/4"),
        ("DISCORD_SHARDS", "all"),
    ],
)
def test_malformed_setting_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as error:
        Settings.from_env({name: value}, dotenv_path=None)
    assert name in str(error.value)
    assert "\n" not in str(error.value)


def test_dotenv_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("IMAGEBOT_MAX_IMAGES=6\nIMAGEBOT_DAILY_QUOTA=7\n")
    settings = Settings.from_env({"IMAGEBOT_DAILY_QUOTA": "9"}, dotenv_path=env_file)
    assert settings.max_images == 6
    assert settings.daily_quota == 9


def test_secrets_never_show() -> None:
    settings = Settings.from_env(
        {"OPENAI_API_KEY": "sk-very-secret", "DISCORD_TOKEN": "tok-secret"}, dotenv_path=None
    )
    shown = repr(settings) + str(settings.openai_api_key)
    assert "sk-very-secret" not in shown
    assert "tok-secret" not in shown
    assert settings.openai_api_key == Secret("sk-very-secret")
    assert settings.openai_api_key.reveal() == "sk-very-secret"


def test_the_webui_upscaler_is_a_setting_with_the_spec_default() -> None:
    from imagebot.bot.settings import Settings

    default = Settings.from_env(environ={}, dotenv_path=None)
    chosen = Settings.from_env(
        environ={"STABLE_DIFFUSION_UPSCALER": "4x-UltraSharp"}, dotenv_path=None
    )
    assert default.provider_options.stable_diffusion_upscaler == "R-ESRGAN 4x+"
    assert chosen.provider_options.stable_diffusion_upscaler == "4x-UltraSharp"
    assert not any("STABLE_DIFFUSION_UPSCALER" in w for w in chosen.warnings)


def test_many_process_settings_are_read_and_the_database_url_stays_secret() -> None:
    url = "postgresql://bot:hunter2@db.internal/imagebot"
    settings = Settings.from_env(
        {
            "IMAGEBOT_DATABASE_URL": url,
            "IMAGEBOT_ARCHIVE_URL": "s3://imagebot-archive/community/",
            "IMAGEBOT_S3_ENDPOINT": "http://127.0.0.1:9000",
            "DISCORD_SHARDS": "2-3/8",
        },
        dotenv_path=None,
    )
    assert settings.database_url is not None and settings.database_url.reveal() == url
    assert "hunter2" not in repr(settings)
    assert settings.archive_url == "s3://imagebot-archive/community"
    assert settings.s3_endpoint == "http://127.0.0.1:9000"
    assert settings.discord_shards is not None and settings.discord_shards.ids == [2, 3]
    assert settings.discord_shards.count == 8
