"""The package's shape: layers without cycles, modules of one job, every subpackage shipped."""

from __future__ import annotations

import ast
from pathlib import Path

import astpatch

from conftest import ROOT, pyproject

PACKAGE = Path(astpatch.__path__[0])

# Each internal subpackage is a layer; a module imports only from its own subpackage and from lower
# layers. Everything else (the public API, the command line, the pytest plugin, the testing kit) is
# a front end on top.
LAYERS = {"_base": 0, "_model": 1, "_engine": 2, "_inspect": 3, "_hook": 3}
FRONT = 4
MAX_LINES = 320  # "about 300"


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        if "rules" in relative.parts[1:2]:  # the shipped rule files are data, not modules of the package
            continue
        name = ".".join(relative.parts)
        found[name.removesuffix(".__init__")] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules that `name` imports, at any depth of the file (functions and
    TYPE_CHECKING blocks included: a cycle there is still a cycle in the design)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {f for f in found if f in known and f != name}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def layer(name: str) -> int:
    parts = name.split(".")
    return LAYERS.get(parts[1], FRONT) if len(parts) > 1 else FRONT


def cycles(edges: dict[str, set[str]]) -> list[str]:
    """Every cycle a depth-first walk meets, as `a -> b -> a`."""
    found = []
    state: dict[str, int] = {}  # 1 on the stack, 2 done

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges[node]):
            if state.get(target) == 1:
                path = stack + [node]
                found.append(" -> ".join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target, stack + [node])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [])
    return found


def test_the_import_graph_has_no_cycle():
    assert cycles(graph()) == []


def test_the_cycle_check_finds_a_cycle(tmp_path):
    """The checker itself: two modules importing each other (one inside a function) are a cycle."""
    (tmp_path / "a.py").write_text("from . import b\n")
    (tmp_path / "b.py").write_text("def f():\n    from .a import x\n")
    known = {"p.a": tmp_path / "a.py", "p.b": tmp_path / "b.py"}
    edges = {name: imports(name, path, known) for name, path in known.items()}
    assert edges == {"p.a": {"p.b"}, "p.b": {"p.a"}}
    assert cycles(edges) == ["p.a -> p.b -> p.a"]


def test_each_module_imports_only_its_own_layer_and_those_below():
    wrong = [f"{name} ({layer(name)}) imports {target} ({layer(target)})"
             for name, targets in graph().items() for target in targets
             if layer(name) < FRONT and layer(target) >= layer(name)
             and target.split(".")[:2] != name.split(".")[:2] and target != "astpatch"]
    assert wrong == []
    # The lower layers never import the package's front: `astpatch` itself (the public API).
    assert [name for name, targets in graph().items() if layer(name) < FRONT and "astpatch" in targets] == []


def test_modules_are_small_and_say_their_job_first():
    for name, path in modules().items():
        text = path.read_text()
        assert len(text.splitlines()) <= MAX_LINES, f"{name} has {len(text.splitlines())} lines"
        docstring = ast.get_docstring(ast.parse(text))
        assert docstring and docstring.splitlines()[0].strip(), f"{name} has no docstring saying its job"


def test_every_subpackage_is_shipped():
    """The wheel takes the whole astpatch/ directory (pyproject.toml lists no packages), so a new subpackage
    ships as long as it is a package: every directory of modules has its __init__.py.
    tests/test_packaging.py compares the built wheel with the tree."""
    wheel = pyproject()["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert "astpatch" in wheel["only-include"]
    directories = {p.parent for p in (ROOT / "astpatch").rglob("*.py") if "__pycache__" not in p.parts}
    assert sorted(str(d) for d in directories if not (d / "__init__.py").is_file()) == []


def test_internal_modules_are_private_and_the_public_api_is_the_package():
    public = {name for name in modules() if not any(part.startswith("_") for part in name.split(".")[1:])}
    assert public == {"astpatch", "astpatch.cli", "astpatch.coverage", "astpatch.pytest_plugin", "astpatch.testing"}
    assert sorted(astpatch.__all__) == sorted(astpatch._EXPORTS)
    for name in astpatch.__all__:
        assert getattr(astpatch, name) is not None
