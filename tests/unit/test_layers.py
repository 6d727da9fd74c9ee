"""The import graph, read from the source. No cycle anywhere in `ocirt` (imports under
TYPE_CHECKING aside); the front end is stricter: no cycle inside `things` or `daemon`
even counting TYPE_CHECKING imports, nothing imports upward, and the CLI reaches the
daemon only through the commands that work on the daemon's own config with the daemon
stopped (`ocirt daemon`, `ocirt network prune`)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ocirt

ROOT = Path(ocirt.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            # `from ocirt.things import known` names a module too.
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("ocirt.")}


def _runtime_imports(path: Path, modules: set[str]) -> set[str]:
    """Imports that run (function-local included), without those under TYPE_CHECKING;
    `from ocirt.config import enums` names the submodule, not the package."""
    tree = ast.parse(path.read_text(), str(path))
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only.update(id(inner) for inner in ast.walk(node))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            submodules = {f"{node.module}.{alias.name}" for alias in node.names} & modules
            found.update(submodules or {node.module})
    return found & modules


def test_no_import_cycle_anywhere_in_ocirt() -> None:
    paths = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph = {name: _runtime_imports(path, set(paths)) - {name} for name, path in paths.items()}
    assert _cycle(graph) == []


def _graph(package: str) -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in (ROOT / package).rglob("*.py")}
    return {name: _imports(path) & set(modules) - {name} for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


@pytest.mark.parametrize("package", ["things", "daemon", "cli"])
def test_no_import_cycle(package: str) -> None:
    assert _cycle(_graph(package)) == []


def test_the_cycle_finder_finds_one() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_things_imports_neither_daemon_nor_cli() -> None:
    for path in (ROOT / "things").rglob("*.py"):
        upward = {m for m in _imports(path) if m.startswith(("ocirt.daemon", "ocirt.cli"))}
        assert upward == set(), path.name


def test_cli_reaches_the_daemon_only_through_its_config_commands() -> None:
    importers = {
        path.name
        for path in (ROOT / "cli").rglob("*.py")
        if any(m.startswith("ocirt.daemon") for m in _imports(path))
    }
    assert importers == {"daemon_cmd.py", "network_cmd.py"}
