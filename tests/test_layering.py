"""The package's layers import one way: each subpackage imports only from layers below it (or its own), no module
imports itself back through others, no production module imports the tiny components or the test helpers, and no
subpackage takes another's private names.

The imports are read from the source with `ast` (every `import` statement, those inside functions included), so the
test needs no import of the package and sees lazy imports too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tall_hf"

# Bottom first. A subpackage (or top-level module) of `tall_hf` may import from its own layer and those below.
LAYERS: list[tuple[str, ...]] = [
    ("utils", "resources", "model_cards"),
    ("modules", "visualization", "tiny"),
    ("hub",),
    ("adapters",),
    ("models",),
    ("data",),
    ("generation",),
    ("training",),
    ("evaluation",),
    ("worlds",),
    ("demo", "demo_bridge"),
    ("cli",),
]
# Builders of offline components and the tests' helpers: only the offline world, the demos, the command line (its
# `--tiny_components` smoke runs) and `testing` itself may import them.
FIXTURES = {"tiny": {"worlds", "demo", "demo_bridge", "cli", "testing"}, "testing": set()}
# Outside the layers: `testing` (helpers of the tests and benchmarks) may import any layer; the root package is the
# public facade, which the layers may read `__version__` from and nothing else.
OUTSIDE = {"testing"}
# Imports that other parts of issue 22 remove (the LR->HR translation as a data step instead of processor state; the
# composite base and PEFT wrapping in place of the adapters mixin). Each entry must still exist: delete it when its
# part lands, and the test then holds the rule for it too.
PENDING: dict[tuple[str, str], str] = {
    ("tall_hf.adapters.tall", "tall_hf.models.tall.modeling_tall"): "composite base, PEFT wrapping",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> list[str]:
    """The `tall_hf` modules an `import from` statement loads: `from ..a import b` is `a.b` where `b` is a module."""
    if node.level:
        base = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if not target.startswith("tall_hf"):
        return []
    submodules = [f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in MODULES]
    return submodules if len(submodules) == len(node.names) else [target, *submodules]


def _imports() -> dict[str, dict[str, list[str]]]:
    """`{module: {imported module: [names taken]}}` for every module of the package."""
    graph: dict[str, dict[str, list[str]]] = {}
    for module, path in MODULES.items():
        edges = graph.setdefault(module, {})
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("tall_hf"):
                        edges.setdefault(alias.name, [])
            elif isinstance(node, ast.ImportFrom):
                for target in _resolve(module, path.name == "__init__.py", node):
                    edges.setdefault(target, []).extend(alias.name for alias in node.names)
    return graph


GRAPH = _imports()
LEVEL = {name: level for level, names in enumerate(LAYERS) for name in names}


def _part(module: str) -> str:
    """The subpackage (or top-level module) of `tall_hf` a module belongs to; `""` for the root package."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _violations() -> list[str]:
    found = []
    for module, edges in GRAPH.items():
        source = _part(module)
        if source == "":
            continue  # the facade
        for target, names in edges.items():
            destination = _part(target)
            if (module, target) in PENDING or destination == source:
                continue
            private = [name for name in names if name.startswith("_") and not name.startswith("__")]
            if private:
                found.append(f"{module} takes private names {private} from {target}")
            if destination == "":
                if set(names) != {"__version__"}:
                    found.append(f"{module} takes {names} from the package root (only __version__ may be read)")
            elif destination in FIXTURES and source not in FIXTURES[destination]:
                found.append(f"{module} imports {target}: production code does not import {destination}")
            elif source in OUTSIDE:
                continue
            elif destination in OUTSIDE:
                found.append(f"{module} imports {target}")
            elif LEVEL[destination] > LEVEL[source]:
                found.append(f"{module} ({source}) imports {target} from a higher layer ({destination})")
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
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
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_every_part_of_the_package_has_a_layer():
    parts = {_part(module) for module in MODULES} - {""}
    assert parts - set(LEVEL) - OUTSIDE == set()


def test_each_layer_imports_only_downward():
    assert _violations() == []


def test_no_module_imports_itself_back():
    """No cycle among modules, nor among subpackages (a package's `__init__` counts as the package). The root
    package is left out: its imports are lazy (`__getattr__`) or for type checkers only."""
    modules = {
        module: {target for target in edges if (module, target) not in PENDING and target != "tall_hf"}
        for module, edges in GRAPH.items()
        if module != "tall_hf"
    }
    assert _cycles(modules) == []
    parts: dict[str, set[str]] = {}
    for module, targets in modules.items():
        parts.setdefault(_part(module), set()).update(_part(target) for target in targets)
    assert _cycles({part: targets - {part} for part, targets in parts.items()}) == []


@pytest.mark.parametrize("edge", sorted(PENDING))
def test_pending_exceptions_still_exist(edge):
    """An exception whose import is gone is deleted from `PENDING`, so the rule holds for it from then on."""
    module, target = edge
    assert target in GRAPH[module], f"{module} no longer imports {target}: delete it from PENDING"


def test_the_examples_use_no_test_helpers():
    examples = Path(__file__).resolve().parents[1] / "examples"
    for path in examples.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("tall_hf.testing"), f"{path.name} imports {node.module}"
