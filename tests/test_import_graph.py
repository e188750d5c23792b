"""esbgen's own import graph: no cycles, and no chain of imports deeper than MAX_DEPTH modules.

Every import statement counts, wherever it stands: at module level, inside a function, under
``if TYPE_CHECKING:``. A function-local import hides a cycle from Python until the function runs,
not from the reader. Importing ``esbgen.a.b`` runs ``esbgen/a/__init__.py`` first: a module also
depends on a package it lives in whose ``__init__`` imports anything of esbgen's.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "esbgen"
MAX_DEPTH = 11


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))
            if "__pycache__" not in path.parts and "cookiecutters" not in path.parts}


def _imported_names(name: str, path: Path) -> set[str]:
    is_package = path.name == "__init__.py"
    names = set()
    for node in ast.walk(ast.parse(path.read_bytes(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")[: len(name.split(".")) - node.level + is_package]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)  # `from esbgen.a import b` may import a module b
    return names


def import_graph() -> dict[str, set[str]]:
    modules = _modules()

    def owner(name: str) -> str | None:  # the module a dotted name is, or is an attribute of
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, path in modules.items():
        targets = {owner(imported) for imported in _imported_names(name, path) if imported.split(".")[0] == "esbgen"}
        graph[name] = {target for target in targets if target and target != name}
    for name in graph:
        parents = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
        graph[name] |= {parent for parent in parents if graph[parent] and parent != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, without recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph[successor]))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def longest_chain(graph: dict[str, set[str]]) -> list[str]:
    """The longest chain of imports, as modules (the graph has no cycles)."""
    chains: dict[str, list[str]] = {}

    def chain(node: str) -> list[str]:
        if node not in chains:
            chains[node] = [node] + max((chain(target) for target in sorted(graph[node])), key=len, default=[])
        return chains[node]

    return max((chain(node) for node in sorted(graph)), key=len)


def test_the_graph_sees_function_local_and_type_checking_imports():
    graph = import_graph()
    assert "esbgen.errors" in graph["esbgen.cli"]
    assert len(graph) > 20


def test_esbgen_has_no_import_cycle():
    found = cycles(import_graph())
    assert not found, "import cycles among esbgen's modules:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_no_chain_of_imports_is_deeper_than_eleven_modules():
    graph = import_graph()
    assert not cycles(graph)
    deepest = longest_chain(graph)
    assert len(deepest) <= MAX_DEPTH, f"{len(deepest)} levels: " + " -> ".join(deepest)


def test_cycles_and_depth_are_found_where_they_are():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert longest_chain({"a": {"b"}, "b": {"c"}, "c": set(), "d": {"c"}}) == ["a", "b", "c"]
