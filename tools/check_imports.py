"""Check that cdi's imports point down the layers of ``docs/architecture.md`` and form no cycle.

Run from the repository root::

    .venv/bin/python -m tools.check_imports

Every ``import`` and ``from ... import`` of a cdi module counts, at module
level or inside a function (a function-level import hides a cycle, it does not
remove it). Prints one line per violation and exits 1 if there is any.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("schemas", "config", "matching", "quality", "jobs", "demo", "steward", "bench", "tools")

# Lowest first; a module may import its own layer and the layers below.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("schemas",),
    ("config",),
    ("matching", "quality"),
    ("jobs",),
    ("jobs.cli", "demo", "steward", "bench", "tools"),
)


def layer_of(module: str) -> int:
    """The highest layer whose prefixes match ``module`` (``jobs.cli`` sits above ``jobs``)."""
    found = -1
    for index, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            found = index
    if found < 0:
        raise ValueError(f"{module} is in no layer")
    return found


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def imported(tree: ast.AST, known: Iterable[str]) -> Iterator[str]:
    """The cdi modules a module imports (``from pkg import module`` names the module when it is one)."""
    known = set(known)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            names = [n if n in known else node.module for n in names]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name.split(".")[0] in PACKAGES:
                yield name


def graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {
        name: {m for m in imported(ast.parse(path.read_text(encoding="utf-8")), modules) if m != name}
        for name, path in modules.items()
    }


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    return [
        f"{source} (layer {layer_of(source)}) imports {target} (layer {layer_of(target)})"
        for source, targets in sorted(edges.items())
        for target in sorted(targets)
        if layer_of(target) > layer_of(source)
    ]


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def problems() -> list[str]:
    edges = graph()
    return upward_imports(edges) + [f"import cycle: {' -> '.join(c)}" for c in cycles(edges)]


def main() -> int:
    found = problems()
    for line in found:
        print(line)
    print(f"{len(found)} problem(s) in the imports of {len(graph())} modules")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
