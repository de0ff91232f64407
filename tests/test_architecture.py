"""The layering holds: imports in core/litetext point one way (no circle, even through imports inside functions),
and the adapters use only what litetext declares public."""

from __future__ import annotations

import ast
from pathlib import Path

import litetext

REPO = Path(__file__).resolve().parents[1]
CORE = REPO / "core" / "litetext"
ADAPTERS = [REPO / "gradio_app", *sorted(p for p in (REPO / "plugins").iterdir() if p.is_dir())]


def _module_name(path: Path) -> str:
    parts = ("litetext",) + path.relative_to(CORE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in CORE.rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    """Every import statement that runs (module level or in a function), skipping `if TYPE_CHECKING:` blocks."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from (i for child in node.orelse for i in _imports_of(child))
            continue
        yield from _imports_of(node)


def _imports_of(node: ast.AST):
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node
    else:
        yield from _imports(node)


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The litetext modules an import statement loads."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in MODULES}
    if node.level:
        package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{node.module}" if node.module else package
    else:
        base = node.module or ""
    found = set()
    for alias in node.names:
        if f"{base}.{alias.name}" in MODULES:
            found.add(f"{base}.{alias.name}")
        elif base in MODULES:
            found.add(base)
    return found


def import_graph() -> dict[str, set[str]]:
    graph = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        graph[module] = {t for node in _imports(tree) for t in _targets(module, node)} - {module}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_core_imports_form_no_circle():
    graph = import_graph()
    assert graph["litetext.engine"], "the graph reader found no imports: it is broken"
    assert circles(graph) == []


def test_the_circle_check_catches_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_model_building_and_runtimes_never_import_the_engine_or_pipelines():
    graph = import_graph()
    above = {"litetext.engine", "litetext.loader"} | {m for m in MODULES if m.startswith("litetext.pipelines")}
    for module, targets in graph.items():
        if module.startswith(("litetext.models", "litetext.runtime", "litetext.onnx")):
            assert not targets & above, f"{module} imports {targets & above}"


def test_the_engine_and_pipelines_never_ask_which_runtime_they_hold():
    import re

    graph = import_graph()
    for module, path in MODULES.items():
        if module.startswith(("litetext.pipelines", "litetext.engine")):
            assert not {t for t in graph[module] if t.startswith("litetext.onnx")}, module
            assert not re.search(r"(\.name|backend)\s*[!=]=|isinstance\([^)]*Onnx", path.read_text()), module


def test_adapters_use_only_public_names():
    public_modules = {"litetext", *litetext.PUBLIC_MODULES}
    problems = []
    for folder in ADAPTERS:
        for path in folder.rglob("*.py"):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").startswith("litetext"):
                    if node.module.split(".")[0] != "litetext":
                        continue  # the adapters' own packages (litetext_gradio, ...)
                    if node.module not in public_modules:
                        problems.append(f"{path.relative_to(REPO)}: from {node.module} import ...")
                    elif node.module == "litetext":
                        problems += [f"{path.relative_to(REPO)}: litetext.{a.name} is not exported"
                                     for a in node.names if a.name not in litetext.__all__]
                elif isinstance(node, ast.Import):
                    problems += [f"{path.relative_to(REPO)}: import {a.name}" for a in node.names
                                 if a.name.split(".")[0] == "litetext" and a.name not in public_modules]
                elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                      and node.value.id == "litetext" and node.attr not in litetext.__all__):
                    problems.append(f"{path.relative_to(REPO)}:{node.lineno}: litetext.{node.attr} is not exported")
    assert problems == []


def test_every_public_module_and_name_imports():
    import importlib

    for module in litetext.PUBLIC_MODULES:
        importlib.import_module(module)
    for name in litetext.__all__:
        assert getattr(litetext, name) is not None
