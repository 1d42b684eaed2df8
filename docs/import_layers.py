"""Checks docs/architecture.md's layer picture against the real imports.

`python docs/import_layers.py` prints every import (module level or inside a function) that goes
from a lower layer to a higher one. The import graph of single modules has no cycles
(tests/test_imports.py); this looks at the coarser layers a reader keeps in mind.
"""
import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
# lowest first; a module may import its own layer and any layer below it
LAYERS = [
    ["aelab.errors", "aelab.config", "aelab.lazy"],
    ["aelab.data"],
    ["aelab.models"],
    ["aelab.runs.folder", "aelab.runs.refs", "aelab.runs.labels", "aelab.runs.ownership"],
    ["aelab.metrics"],
    ["aelab.training"],
    ["aelab.runs"],  # execution, local, ray_backend, study, study_results
    ["aelab.explore"],
    ["aelab.ui", "aelab.cli", "aelab.__main__", "aelab"],  # aelab/__init__ re-exports, cli sits on top
    ["pages", "app"],
]


def layer(module: str) -> int:
    best, level = -1, None
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best:
                best, level = len(p), i
    return level


def module_of(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(tree):
    """(imported module, inside a function?) for every aelab import."""
    def walk(node, inner):
        for child in ast.iter_child_nodes(node):
            deeper = inner or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                yield from ((a.name, deeper) for a in child.names if a.name.startswith("aelab"))
            elif isinstance(child, ast.ImportFrom) and (child.module or "").startswith("aelab"):
                for a in child.names:
                    sub = f"{child.module}.{a.name}"
                    is_module = (ROOT / sub.replace(".", "/")).with_suffix(".py").exists() or \
                        (ROOT / sub.replace(".", "/")).is_dir()
                    yield (sub if is_module else child.module), deeper
            yield from walk(child, deeper)
    yield from walk(tree, False)


def main():
    files = sorted(ROOT.glob("aelab/**/*.py")) + sorted(ROOT.glob("pages/*.py")) + [ROOT / "app.py"]
    upward = []
    for f in files:
        src = module_of(f)
        for target, inner in imports(ast.parse(f.read_text())):
            if src == "aelab" or target == "aelab":
                continue  # the package's re-exports
            if layer(target) > layer(src):
                upward.append((src, target, "in a function" if inner else "module level"))
    for src, target, where in sorted(set(upward)):
        print(f"{src:34} -> {target:34} {where}")
    print(f"{len(set(upward))} upward imports")


if __name__ == "__main__":
    main()
