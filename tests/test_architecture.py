"""The shape of `app/`: the import graph has no cycle, between modules or between areas, and
areas never import the composition roots (`server`, `worker`, `cli`).

Run it as a script to print the graph: `python tests/test_architecture.py` (modules) or
`python tests/test_architecture.py --areas`.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app"
COMPOSITION_ROOTS = {"app.server", "app.worker", "app.cli"}


def is_composition_root(module: str) -> bool:
    """The roots, and every module of the `dispatch` command's package."""
    return module in COMPOSITION_ROOTS or module.startswith("app.cli.")


# Modules directly under app/ are not areas: the foundation (settings, time, logging, the mode
# table, signing) and the platform every area runs on (events, job names, the queue, the runtime).
FOUNDATION = {"app", "app.clock", "app.config", "app.logs", "app.modes", "app.signing"}
PLATFORM = {"app.events", "app.jobs", "app.queue", "app.runtime"}
# Layers below the areas: they import each other (downwards) but never an area.
LOWER_LAYERS = {"foundation", "platform", "db", "github", "web"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Imports(ast.NodeVisitor):
    """Imports that run when the module is imported or its functions are called; imports under
    `if TYPE_CHECKING:` never run and are not edges."""

    def __init__(self, module: str, is_package: bool, known: set[str]) -> None:
        self.module = module
        self.package = module if is_package else module.rpartition(".")[0]
        self.known = known
        self.found: set[str] = set()
        self.in_function: set[str] = set()
        self._depth = 0

    def visit_If(self, node: ast.If) -> None:
        if _type_checking(node):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._depth += 1
        self.generic_visit(node)
        self._depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def _add(self, name: str) -> None:
        while name and name not in self.known:
            name = name.rpartition(".")[0]
        if name and name != self.module:
            self.found.add(name)
            if self._depth:
                self.in_function.add(name)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name.startswith("app"):
                self._add(alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            target = f"{base}.{node.module}" if node.module else base
        else:
            target = node.module or ""
        if not target.startswith("app"):
            return
        for alias in node.names:
            full = f"{target}.{alias.name}"
            self._add(full if full in self.known else target)


def module_graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(module → modules it imports, module → modules it imports inside a function)."""
    files = {module_name(path): path for path in APP.rglob("*.py")}
    known = set(files)
    graph: dict[str, set[str]] = {}
    lazy: dict[str, set[str]] = {}
    for name, path in files.items():
        visitor = _Imports(name, path.name == "__init__.py", known)
        visitor.visit(ast.parse(path.read_text(), str(path)))
        graph[name] = visitor.found
        lazy[name] = visitor.in_function
    return graph, lazy


def area_of(module: str) -> str:
    if module in FOUNDATION:
        return "foundation"
    if module in PLATFORM:
        return "platform"
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else module


def area_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    areas: dict[str, set[str]] = defaultdict(set)
    for module, targets in graph.items():
        source = area_of(module)
        areas[source]
        for target in targets:
            if area_of(target) != source:
                areas[source].add(area_of(target))
    return dict(areas)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
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
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_modules_import_no_cycle() -> None:
    graph, _ = module_graph()
    assert cycles(graph) == []


def test_areas_import_no_cycle() -> None:
    assert cycles(area_graph(module_graph()[0])) == []


def test_only_composition_roots_import_composition_roots() -> None:
    graph, _ = module_graph()
    offenders = {
        module: sorted(filter(is_composition_root, targets))
        for module, targets in graph.items()
        if not is_composition_root(module) and any(map(is_composition_root, targets))
    }
    assert offenders == {}


def test_lower_layer_imports_no_area() -> None:
    graph, _ = module_graph()
    lower = {m for m in graph if area_of(m) in LOWER_LAYERS}
    offenders = {
        module: sorted(t for t in targets if t not in lower)
        for module, targets in graph.items()
        if module in lower and any(t not in lower for t in targets)
    }
    assert offenders == {}


def test_function_level_imports_only_in_the_cli() -> None:
    """Hidden imports hide dependencies; the CLI (`app/cli/`) imports lazily so `dispatch --help`
    is fast."""
    _, lazy = module_graph()
    assert {module: sorted(t) for module, t in lazy.items() if t and area_of(module) != "cli"} == {}


def main(argv: list[str]) -> None:
    graph, _ = module_graph()
    shown = area_graph(graph) if "--areas" in argv else graph
    for source in sorted(shown):
        print(f"{source} -> {', '.join(sorted(shown[source])) or '(nothing)'}")
    found = cycles(shown)
    print(f"\n{len(found)} cycle(s)")
    for component in found:
        print(f"  {len(component)}: {' '.join(component)}")


if __name__ == "__main__":
    main(sys.argv[1:])
