"""No import circle in the package: the module import graph, read from the AST, is acyclic.

Only imports that run when a module is imported count: statements at module level
(also inside a module-level ``if``/``try``/``with``), not ``if TYPE_CHECKING:`` blocks
and not the lazy imports inside functions, which run when the function is called.
``from pkg import name`` counts as an edge to ``pkg.name`` when that is a module,
else to ``pkg``; the implicit import of a module's parent packages does not count
(a package ``__init__`` re-exporting its own modules is no circle).
"""

from __future__ import annotations

import ast
from pathlib import Path

import yolo_slim

PACKAGE = Path(yolo_slim.__file__).parent


def _module_names(root: Path) -> dict[str, Path]:
    names = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _targets(module: str, is_package: bool, node: ast.Import | ast.ImportFrom, modules: dict[str, Path]) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in modules}
    base = node.module or ""
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        package = package[: len(package) - node.level + 1]
        base = ".".join(package + ([node.module] if node.module else []))
    out = set()
    for alias in node.names:
        full = f"{base}.{alias.name}"
        if full in modules:
            out.add(full)
        elif base in modules:
            out.add(base)
    return out


def _eager_imports(body: list[ast.stmt], module: str, is_package: bool, modules: dict[str, Path]) -> set[str]:
    edges: set[str] = set()
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            edges |= _targets(module, is_package, node, modules)
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            edges |= _eager_imports(node.orelse, module, is_package, modules)
        elif isinstance(node, (ast.If, ast.With)):
            edges |= _eager_imports(node.body + getattr(node, "orelse", []), module, is_package, modules)
        elif isinstance(node, ast.Try):
            blocks = node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body]
            edges |= _eager_imports(blocks, module, is_package, modules)
    return edges


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module name -> the package's modules it imports when imported."""
    modules = _module_names(root)
    return {
        name: _eager_imports(ast.parse(path.read_text(encoding="utf-8")).body, name, path.name == "__init__.py", modules) - {name}
        for name, path in modules.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_package_has_no_import_circle() -> None:
    graph = import_graph(PACKAGE)
    assert len(graph) > 100  # the walk found the package
    assert "yolo_slim.darknet.sections" in graph["yolo_slim.darknet.parser"]
    assert cycles(graph) == []


def test_the_pipeline_stages_and_the_benchmark_share_their_context_not_each_other() -> None:
    graph = import_graph(PACKAGE)
    benchmark, stages = graph["yolo_slim.pipeline.benchmark"], graph["yolo_slim.pipeline.stages"]
    assert "yolo_slim.pipeline.context" in benchmark and "yolo_slim.pipeline.context" in stages
    assert "yolo_slim.pipeline.stages" not in benchmark
    assert "yolo_slim.pipeline.benchmark" in stages  # imported when stages is, not lazily


def test_a_circle_is_found_and_lazy_imports_are_not(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from pkg.a import f\n")
    (pkg / "a.py").write_text("from pkg import b\n\ndef f():\n    from pkg import c\n")
    (pkg / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import c\nfrom . import c\n")
    (pkg / "c.py").write_text("import pkg.a\n")
    (pkg / "d.py").write_text("def g():\n    import pkg.a\n")
    graph = import_graph(pkg)
    assert graph["pkg.a"] == {"pkg.b"}
    assert graph["pkg.d"] == set()
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.c"]]


def test_the_config_checks_read_the_stage_list_without_the_pipeline_runner() -> None:
    """`config.validate` asks `pipeline.context` for the stages; the package's lazy
    `__init__` must not pull in the runner (and through it every task and the config)."""
    import subprocess
    import sys

    code = ("import sys, yolo_slim.pipeline.context as c; "
            "print(sorted(m for m in sys.modules if m.startswith('yolo_slim.pipeline')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "['yolo_slim.pipeline', 'yolo_slim.pipeline.context']"
