"""The packages stack in layers: each imports only the ones below it, and no modules cycle.

`config` (settings, the Temporal client) and `domain` are at the bottom; `aftersales` (the CLI,
the worker and the dev stack) is at the top. A module that imports upwards, or two that
import each other, fails here with the offending import named.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Bottom to top: a package may import itself and anything listed before it.
LAYERS = [
    "domain",
    "config",
    "store",
    "notifications",
    "activities",
    "workflows",
    "api",
    "aftersales",
]


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in LAYERS:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue  # Alembic loads these by path; they are not imported
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _imports(path: Path, *, top_level_only: bool) -> list[tuple[int, str]]:
    """(line, module) of each absolute import; inside functions too unless `top_level_only`."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    if top_level_only:
        # `with workflow.unsafe.imports_passed_through():` blocks hold module-level imports
        # too; `if TYPE_CHECKING:` ones never run, so they can't make a cycle.
        nodes = [
            n
            for stmt in tree.body
            if not _in_function(stmt) and not _type_checking(stmt)
            for n in ast.walk(stmt)
        ]
    found: list[tuple[int, str]] = []
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
    return found


def _type_checking(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.If) and ast.unparse(stmt.test).endswith("TYPE_CHECKING")


def _in_function(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)


def test_every_package_imports_only_the_layers_below_it() -> None:
    upward: list[str] = []
    for name, path in _modules().items():
        own = LAYERS.index(name.split(".")[0])
        for line, module in _imports(path, top_level_only=False):
            top = module.split(".")[0]
            if top in LAYERS and LAYERS.index(top) > own:
                upward.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert upward == [], "imports from a higher layer:\n" + "\n".join(upward)


def test_no_modules_import_each_other() -> None:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for _, module in _imports(path, top_level_only=True):
            # `from a.b import c` may name module a.b.c or a name in a.b: take the longest known.
            while module and module not in modules:
                module = module.rpartition(".")[0]
            if module and module != name:
                targets.add(module)
        graph[name] = targets

    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the current path, 2 done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("package", LAYERS)
def test_each_layer_exists(package: str) -> None:
    # A renamed package would silently drop out of the checks above.
    assert (ROOT / package / "__init__.py").is_file()
