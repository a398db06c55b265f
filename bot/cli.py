"""The `imagebot` command line: a third adapter over the same commands as the chat bots.

Only argparse is imported at start-up; everything heavy is imported by the verb that needs it,
so `imagebot --help` answers at once.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from imagebot.providers.catalog import PROVIDER_IDS

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageExit(Exception):
    """A usage error found by argparse: one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageExit(f"{message} (see '{self.prog} --help')")


def build_parser() -> Parser:
    parser = Parser(
        prog="imagebot",
        description="Invent image prompts, render them, and archive every batch.",
        epilog="Settings come from the environment and .env; see .env.example.",
    )
    verbs = parser.add_subparsers(dest="verb", metavar="COMMAND", parser_class=Parser)
    verbs.required = True

    gen = verbs.add_parser("generate", help="make batches of images from new prompt specs")
    gen.add_argument("count", metavar="COUNT", help="images per batch (1 to IMAGEBOT_MAX_IMAGES)")
    gen.add_argument("size", metavar="SIZE", nargs="?", help="WxH, default 1024x1024")
    gen.add_argument("--provider", "-p", help=f"one of: {', '.join(PROVIDER_IDS)}")
    gen.add_argument("--theme", "-t", help="what the images should be about")
    gen.add_argument("--role", "-r", help="a role pack in data/roles (default: varied)")
    gen.add_argument("--batches", "-b", default="1", help="how many batches (default 1)")
    gen.add_argument("--prompt-source", "-s", help="gpt or templates")
    gen.add_argument("--seed", type=int, help="base seed, for a repeatable batch")

    prompts = verbs.add_parser("prompts", help="make prompt specs only, appended to a CSV")
    prompts.add_argument("count", metavar="COUNT", help="how many prompt specs (1 to 1000)")
    prompts.add_argument("--theme", "-t", help="what the prompts should be about")
    prompts.add_argument("--role", "-r", help="a role pack in data/roles (default: varied)")
    prompts.add_argument("--seed", type=int, help="seed, for a repeatable list")
    prompts.add_argument("--prompt-source", "-s", help="gpt or templates")
    prompts.add_argument("--csv", help="CSV to append to (default <output>/batch_prompts.csv)")

    export = verbs.add_parser("export", help="write the archive index as CSV")
    export.add_argument("--since", metavar="YYYY-MM-DD", help="only batches from this day on")
    export.add_argument("--out", metavar="FILE", help="file to write (default: standard output)")

    upscale = verbs.add_parser("upscale", help="image N of a batch folder at twice its size")
    upscale.add_argument("folder", metavar="FOLDER", help="a batch folder of the archive")
    upscale.add_argument("image", metavar="IMAGE", type=int, help="which image (1 = the first)")

    daily = verbs.add_parser("daily", help="make the due daily posts (set with /daily in chat)")
    daily.add_argument("--once", action="store_true", help="make every due post, then exit")

    providers = verbs.add_parser(
        "providers", help="the configured providers, their models and sizes, and if they answer"
    )
    providers.add_argument(
        "--timeout", type=float, default=5.0, help="seconds to wait for each answer (default 5)"
    )

    verbs.add_parser(
        "migrate", help="apply pending schema migrations to the index (SQLite or PostgreSQL)"
    )
    verbs.add_parser("discord", help="run the Discord bot (needs DISCORD_TOKEN)")
    verbs.add_parser("telegram", help="run the Telegram bot (needs TELEGRAM_TOKEN)")
    verbs.add_parser("run", help="run every bot whose token is set, and the web app")
    web = verbs.add_parser("web", help="serve the archive gallery and the in-browser chat")
    web.add_argument("--host", help="address to listen on (default IMAGEBOT_WEB_HOST, 127.0.0.1)")
    web.add_argument("--port", type=_port, help="port (default IMAGEBOT_WEB_PORT, 8080)")
    return parser


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 1 to 65535, got {text!r}")
    return int(text)


def _load_settings() -> Any:
    from imagebot.bot.settings import Settings

    return Settings.from_env()


def main(argv: Sequence[str] | None = None) -> int:
    """Run one verb; return the exit status (0 ok, 1 work failed, 2 usage or settings)."""
    from imagebot.providers.base import ConfigError, ProviderError, UsageError
    from imagebot.storage.index import BadIndex
    from imagebot.storage.sql import SchemaError

    try:
        args = build_parser().parse_args(argv)
        settings = _load_settings()
        for warning in settings.warnings:
            print(f"imagebot: warning: {warning}", file=sys.stderr)
        handler = {
            "generate": run_generate,
            "prompts": run_prompts,
            "export": run_export,
            "upscale": run_upscale,
            "daily": run_daily,
            "providers": run_providers,
            "migrate": run_migrate,
            "discord": run_chat_bots,
            "telegram": run_chat_bots,
            "run": run_chat_bots,
            "web": run_chat_bots,
        }
        return handler[args.verb](args, settings)
    except UsageExit as exc:
        return _fail(f"error: {exc}", EXIT_USAGE)
    except UsageError as exc:
        return _fail(f"error: {exc}", EXIT_USAGE)
    except ConfigError as exc:
        return _fail(f"configuration error: {exc}", EXIT_USAGE)
    except BadIndex as exc:
        return _fail(f"configuration error: {exc}", EXIT_USAGE)
    except SchemaError as exc:  # a schema this imagebot does not know: migrate or upgrade
        return _fail(str(exc), EXIT_FAILED)
    except ProviderError as exc:
        return _fail(f"failed: {exc}", EXIT_FAILED)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        return _fail(f"failed: {exc.strerror or exc}{where}", EXIT_FAILED)


def _fail(message: str, status: int) -> int:
    print(f"imagebot: {message}", file=sys.stderr)
    return status


async def _with_services(settings: Any, work: Any) -> Any:
    from imagebot.bot.app import build_services

    services = build_services(settings)
    try:
        return await work(services)
    finally:
        await services.aclose()


def run_generate(args: argparse.Namespace, settings: Any) -> int:
    from imagebot.bot.terminal_progress import ProgressBar
    from imagebot.commands.generate import generate, parse_generate

    request = parse_generate(
        settings.command_config,
        count=args.count,
        size=args.size,
        provider=args.provider,
        theme=args.theme,
        role=args.role,
        prompt_source=args.prompt_source,
        batches=args.batches,
    )
    if args.seed is not None:
        from dataclasses import replace

        request = replace(request, seed=args.seed)
    bar = ProgressBar("rendering", stream=sys.stderr)

    async def work(services: Any) -> Any:
        return await generate(services, request, progress=bar.update)

    try:
        results = asyncio.run(_with_services(settings, work))
    finally:
        bar.close()
    return report_batches(results)


def report_batches(results: list[Any]) -> int:
    """Each folder on stdout; on stderr each distinct failure once, and the truth about what
    rendered: a fallback only when it did render, the offline renderer said to be one."""
    from imagebot.commands.captions import fallback_note, summarise_errors
    from imagebot.storage.archive import OFFLINE_NOTE

    status = EXIT_OK
    offline = False
    for result in results:
        if result.folder is not None:
            print(result.folder)
        if result.errors:
            status = EXIT_FAILED
            what = "no image could be rendered" if not result.images else "some images failed"
            print(f"imagebot: {what}:", file=sys.stderr)
            for line in summarise_errors(result.errors):
                print(f"imagebot:   {line}", file=sys.stderr)
        note = fallback_note(result.fallback_from, result.provider) if result.images else None
        if note:
            print(f"imagebot: {note}", file=sys.stderr)
        offline = offline or (bool(result.images) and result.provider == "local")
    if offline:
        print(f"imagebot: note: {OFFLINE_NOTE}", file=sys.stderr)
    return status


def run_prompts(args: argparse.Namespace, settings: Any) -> int:
    from pathlib import Path

    from imagebot.commands.prompts import (
        CLI_MAX_PROMPTS,
        append_to_csv,
        check_prompts_csv,
        make_prompts,
        parse_prompts,
    )

    request = parse_prompts(
        settings.command_config,
        count=args.count,
        theme=args.theme,
        role=args.role,
        prompt_source=args.prompt_source,
        maximum=CLI_MAX_PROMPTS,
        seed=args.seed,
    )
    path = Path(args.csv) if args.csv else settings.output_dir / "batch_prompts.csv"
    check_prompts_csv(path, explicit=bool(args.csv))  # before any work: nothing is appended

    async def work(services: Any) -> Any:
        return await make_prompts(services, request)

    specs = asyncio.run(_with_services(settings, work))
    append_to_csv(specs, path)
    for spec in specs:
        print(f"- {spec.title}")
    print(f"{len(specs)} prompt specs appended to {path}")
    return EXIT_OK if len(specs) == request.count else EXIT_FAILED


def run_export(args: argparse.Namespace, settings: Any) -> int:
    from pathlib import Path

    from imagebot.bot.app import database_url
    from imagebot.commands.export import export_archive, parse_since
    from imagebot.commands.prompts import check_parent
    from imagebot.storage.opening import open_index

    since = parse_since(args.since)
    if args.out:
        check_parent(Path(args.out), "--out")
    index = open_index(settings.db_path, database_url(settings))
    try:
        count = export_archive(index, since=since, out=args.out, stream=sys.stdout)
    finally:
        index.close()
    if args.out:
        noun = "batch" if count == 1 else "batches"
        print(f"{count} {noun} exported to {args.out}")
    return EXIT_OK


def run_migrate(args: argparse.Namespace, settings: Any) -> int:
    """`imagebot migrate`: bring the configured index's schema up to this imagebot's."""
    from imagebot.bot.app import database_url
    from imagebot.storage.opening import migrate_index

    print(migrate_index(settings.db_path, database_url(settings)))
    return EXIT_OK


def run_upscale(args: argparse.Namespace, settings: Any) -> int:
    """`imagebot upscale FOLDER N`: the same code as the U<n> button; prints the new file."""
    import json
    from pathlib import Path

    from imagebot.commands.upscaling import upscale_image
    from imagebot.providers.base import UsageError

    what = f"{args.folder} is not a batch folder (it has no readable info.json)"
    info: dict[str, Any] | None = None
    if not args.folder.startswith("s3://"):  # an S3 batch's info.json is read by the archive
        try:
            info = json.loads((Path(args.folder) / "info.json").read_text("utf-8"))
        except (OSError, ValueError):
            raise UsageError(what) from None

    async def work(services: Any) -> Any:
        nonlocal info
        info = info if info is not None else await services.archive.read_info(args.folder)
        if not info:
            raise UsageError(what)
        provider = info.get("provider") or "local"
        return await upscale_image(services, str(info.get("id")), args.image, provider)

    done = asyncio.run(_with_services(settings, work))
    remote = args.folder.startswith("s3://")
    print(f"{args.folder.rstrip('/')}/{done['file']}" if remote else done["path"])
    return EXIT_OK


def run_daily(args: argparse.Namespace, settings: Any) -> int:
    """Make the due daily posts through the configured bots, printing each batch folder."""
    from imagebot.bot.app import post_daily

    done = asyncio.run(post_daily(settings, once=args.once))
    if args.once and not done:
        print("imagebot: no daily post is due", file=sys.stderr)
    failed = False
    for post in done:
        for folder in post["folders"]:
            print(folder)
        for error in post["errors"]:
            print(f"imagebot: daily {post['schedule']}: {error}", file=sys.stderr)
        failed = failed or bool(post["errors"])
    return EXIT_FAILED if failed else EXIT_OK


def run_providers(args: argparse.Namespace, settings: Any) -> int:
    """Print each configured provider's health; exit 1 when any of them does not answer."""
    import aiohttp

    from imagebot.commands.providers_report import providers_report

    async def work() -> tuple[str, bool]:
        async with aiohttp.ClientSession() as session:
            return await providers_report(settings.command_config, session, timeout=args.timeout)

    text, all_answer = asyncio.run(work())
    print(text)
    return EXIT_OK if all_answer else EXIT_FAILED


def _log_to_stderr() -> None:
    """A running bot says what it does (log in, reconnects, failed posts); tokens never appear."""
    import logging

    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def run_chat_bots(args: argparse.Namespace, settings: Any) -> int:
    """`imagebot discord|telegram|run|web`: serve until interrupted."""
    from imagebot.bot.app import configured_platforms, require_token, run_bots
    from imagebot.providers.base import ConfigError

    web = None
    if args.verb == "web":
        platforms, web = [], {"host": args.host, "port": args.port}
    elif args.verb == "run":
        platforms, web = configured_platforms(settings), {}
        if not platforms:
            raise ConfigError(
                "neither DISCORD_TOKEN nor TELEGRAM_TOKEN is set; set one of them "
                "(or run the web app alone: imagebot web)"
            )
    else:
        platforms = [args.verb]
    for platform in platforms:  # before any work starts, as every setting is
        require_token(settings, platform)
    if web is not None:
        from imagebot.web.auth import check_exposure

        token = settings.web_token.reveal() if settings.web_token else None
        check_exposure(web.get("host") or settings.web_host, token)
    from imagebot.bot.app import StartupError

    _log_to_stderr()
    try:
        asyncio.run(run_bots(settings, platforms, web=web))
    except StartupError as exc:
        return _fail(f"failed: {exc}", EXIT_FAILED)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
