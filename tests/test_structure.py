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


def module_graph() -> dict[str, set[str]]:
    """Each gdxp module and the gdxp modules it imports, those under ``if TYPE_CHECKING:`` too: a cycle that
    only the type checker sees is still two modules that each need the other to be read."""
    graph: dict[str, set[str]] = {}
    for name, tree in _trees().items():
        graph.setdefault(_node(name), set()).update(
            target for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for target in _imported(name, node))
    return graph


def test_the_module_graph_has_no_cycle():
    order = list(graphlib.TopologicalSorter(module_graph()).static_order())  # raises CycleError on a cycle
    assert order.index("backend") < order.index("network")  # the backend sits at the bottom


def test_no_module_is_over_300_lines():
    lengths = {name: len(path.read_text().splitlines()) for name, path in
               ((".".join(p.relative_to(PACKAGE).with_suffix("").parts), p) for p in PACKAGE.rglob("*.py"))}
    assert {name: n for name, n in lengths.items() if n > 300} == {}


def test_the_floors_go_one_way():
    # backend -> math -> engine -> network -> estimators and files: no floor imports one above it
    floors = [{"backend"}, {"activations", "losses", "backprop", "architecture", "optimizers", "metrics"},
              {"state", "options", "steps", "hooks", "runner", "eager", "compiled", "training"}, {"network"},
              {"loading", "mlp_base", "mlp_training", "mlp_lbfgs", "mlp_pickling", "estimators"}]
    graph = module_graph()
    for level, floor in enumerate(floors):
        above = set().union(*floors[level + 1:])
        for module in floor:
            assert not graph[module] & above, f"gdxp/{module} imports {graph[module] & above}, a floor above it"


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
