"""The library's import graph has no cycles, counting imports inside functions too
(a lazy import hides a cycle from Python but not from a reader)."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "aelab"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the aelab modules it imports anywhere in its source."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                # `from . import models` names a module; `from .runs import x` names runs
                deps |= {f"{target}.{a.name}" if f"{target}.{a.name}" in modules else target
                         for a in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("aelab"):
                # `from aelab.models import ae` names the module aelab.models.ae
                deps |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules
                         else node.module for a in node.names}
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("aelab")}
        graph[name] = (deps & set(modules)) - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    colour, path = {}, []

    def visit(node):
        colour[node] = "grey"
        path.append(node)
        for dep in sorted(graph[node]):
            if colour.get(dep) == "grey":
                return path[path.index(dep):] + [dep]
            if dep not in colour and (cycle := visit(dep)):
                return cycle
        colour[node] = "black"
        path.pop()
        return None

    for node in sorted(graph):
        if node not in colour and (cycle := visit(node)):
            return cycle
    return None


def test_the_library_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_sees_imports_inside_functions():
    graph = import_graph()
    assert "aelab.models" in graph["aelab.runs.folder"]  # a lazy import in load_model
    assert "aelab.models.registry" in graph["aelab.models"]



def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module ``start`` imports, directly or through others."""
    seen, todo = set(), [start]
    while todo:
        for dep in graph[todo.pop()] - seen:
            seen.add(dep)
            todo.append(dep)
    return seen


def test_the_trainer_does_not_import_the_metrics():
    """Scores reach the trainer as callbacks (aelab.runs.train builds the live MIG)."""
    graph = import_graph()
    for module in ("aelab.training.trainer", "aelab.training.setup", "aelab.runs.recorder"):
        assert not {m for m in reachable(graph, module) if m.startswith("aelab.metrics")}, module
    assert "aelab.metrics.disentanglement" in reachable(graph, "aelab.runs.train")
