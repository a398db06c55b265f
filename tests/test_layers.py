"""The house rules, checked on the source: layers point one way and the chat libraries stay in
their adapters. Type-only imports count too (an upward TYPE_CHECKING import is still a cycle
in the design)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("bot", "web", "commands", "providers", "storage")
# What each layer may import of the others: bot -> web -> commands -> (providers, storage).
# web/ is the browser's adapter: the composition root (bot/) starts it, it never reaches up.
ALLOWED = {
    "bot": {"bot", "web", "commands", "providers", "storage"},
    "web": {"web", "commands", "providers", "storage"},
    "commands": {"commands", "providers", "storage"},
    "providers": {"providers"},
    "storage": {"storage"},
}
# Where the chat libraries may be imported: their adapters, nowhere below.
LIBRARY_HOMES = {"discord": "bot/discord/", "aiogram": "bot/telegram/", "jinja2": "web/"}


def imports(path: Path) -> list[tuple[int, str]]:
    """Every module `path` imports (absolute), with its line, wherever the import is."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def sources() -> list[Path]:
    return [path for layer in LAYERS for path in sorted((ROOT / layer).rglob("*.py"))]


def test_layers_point_one_way() -> None:
    wrong = []
    for path in sources():
        layer = path.relative_to(ROOT).parts[0]
        for line, module in imports(path):
            parts = module.split(".")
            if parts[0] in LAYERS:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {module} (not imagebot.)")
            elif parts[0] == "imagebot" and len(parts) > 1 and parts[1] not in ALLOWED[layer]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert wrong == []


def test_chat_libraries_stay_in_their_adapters() -> None:
    wrong = []
    for path in sources():
        relative = path.relative_to(ROOT).as_posix()
        for line, module in imports(path):
            home = LIBRARY_HOMES.get(module.split(".")[0])
            if home is not None and not relative.startswith(home):
                wrong.append(f"{relative}:{line} imports {module}")
    assert wrong == []


def test_the_scan_sees_what_it_checks() -> None:
    # A rule that matched nothing would pass whatever the code did.
    scanned = {path.relative_to(ROOT).parts[0] for path in sources()}
    assert scanned == set(LAYERS) and len(sources()) > 40
    modules = {module for path in sources() for _, module in imports(path)}
    assert {"discord", "aiogram.types", "imagebot.commands.ports"} <= modules
