"""The package's shape, read from its source: which module imports which, and who touches a network's privates.

``python tests/test_structure.py`` prints the graph of gdxp's own modules, one line a module.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "gdxp"
ARRAY_LIBRARIES = {"cupy", "torch", "jax", "dask", "array_api_strict"}


def _trees() -> dict[str, ast.Module]:
    """Every module of gdxp by name; the modules of the ``backend`` package are named ``backend.<module>``."""
    return {".".join(path.relative_to(PACKAGE).with_suffix("").parts): ast.parse(path.read_text(), str(path))
            for path in sorted(PACKAGE.rglob("*.py"))}


def _node(module: str) -> str:
    """A module's place in the graph: the backend package counts as one."""
    return module.split(".")[0]


def _imported(module: str, node: ast.ImportFrom) -> list[str]:
    """The other gdxp modules a relative import names (``from . import a``, ``from .a import b``, ``from ..a``)."""
    top_level = 1 if "." not in module else 2  # the level at which an import reaches gdxp itself
    if node.level != top_level:
        return []
    return [node.module.split(".")[0]] if node.module else [alias.name for alias in node.names]


def _type_checking_blocks(tree: ast.Module) -> set[int]:
    """Line numbers inside ``if TYPE_CHECKING:`` blocks, whose imports never run."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def module_graph() -> dict[str, set[str]]:
    """Each gdxp module and the gdxp modules it imports when it runs (type-checking imports left out)."""
    graph: dict[str, set[str]] = {}
    for name, tree in _trees().items():
        skipped = _type_checking_blocks(tree)
        graph.setdefault(_node(name), set()).update(
            target for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.lineno not in skipped
            for target in _imported(name, node))
    return graph


def test_the_module_graph_has_no_cycle():
    order = list(graphlib.TopologicalSorter(module_graph()).static_order())  # raises CycleError on a cycle
    assert order.index("backend") < order.index("network")  # the backend sits at the bottom


def test_no_import_hides_inside_a_function():
    for name, tree in _trees().items():
        for function in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
            inner = [n for n in ast.walk(function) if isinstance(n, ast.ImportFrom) and n.level]
            assert inner == [], f"gdxp/{name}.py imports gdxp modules inside {function.name}()"


def test_no_module_outside_network_touches_a_networks_privates():
    for name, tree in _trees().items():
        if name == "network":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "net":
                assert not node.attr.startswith("_"), f"gdxp/{name}.py:{node.lineno} reads net.{node.attr}"


def test_only_the_backend_package_imports_an_array_library():
    for name, tree in _trees().items():
        if _node(name) == "backend":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = {(node.module or "").split(".")[0]}
            else:
                continue
            assert not names & ARRAY_LIBRARIES, f"gdxp/{name}.py imports {names & ARRAY_LIBRARIES}"


if __name__ == "__main__":
    for module, imports in sorted(module_graph().items()):
        print(f"{module:<14} -> {', '.join(sorted(imports)) or '-'}")
