"""Finding a function by qualified name: from the module's code objects, or by parsing it.

Both give the function's exact line span (from its first decorator to its last line) and the
scopes down to it, as the compiler numbers them. A name defined more than once at one scope level
(a property's accessors, `typing.overload` stubs, the branches of an `if`) is resolved by parsing
only: `find_definitions` says which of its definitions a target names.
"""

from __future__ import annotations

import ast
import types

# Statements whose bodies, handlers and cases may hold (conditional) definitions at the same scope
# level: a definition in a `match` case is as conditional as one in an `if`.
_BLOCKS: tuple[type[ast.stmt], ...] = (ast.If, ast.Try, ast.With, ast.AsyncWith, ast.For, ast.AsyncFor, ast.While,
                                       ast.Match)
if hasattr(ast, "TryStar"):
    _BLOCKS = _BLOCKS + (ast.TryStar,)
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_Node = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


class Definition:
    """Where a target function is: its line span, and the scopes down to it.

    `scopes` lists (name, first line, is a class) for each enclosing class or function and
    then for the function itself, as the compiler numbers them (a decorated definition starts
    at its first decorator).
    """

    __slots__ = ("scopes", "start", "end", "generic")

    def __init__(self, scopes: list[tuple[str, int, bool]], start: int, end: int, generic: bool = False) -> None:
        self.scopes = scopes
        self.start = start
        self.end = end
        # It or a scope around it has type parameters (PEP 695): Python 3.12+ then puts a code
        # object for them between a scope's code and its parent's.
        self.generic = generic

    @classmethod
    def from_nodes(cls, path: list[ast.AST]) -> Definition:
        scopes = [(n.name, first_line(n), isinstance(n, ast.ClassDef)) for n in path]  # type: ignore[attr-defined]
        generic = any(getattr(n, "type_params", None) for n in path)
        return cls(scopes, first_line(path[-1]), path[-1].end_lineno, generic)  # type: ignore[attr-defined]

    @property
    def in_classes_only(self) -> bool:
        """Whether every enclosing scope is a class and none has type parameters: then the function
        compiles on its own and its code replaces the one at its place in its parent's."""
        return not self.generic and all(is_class for _, _, is_class in self.scopes[:-1])


def first_line(node: ast.AST) -> int:
    """The line a definition's code object starts at: its first decorator, or `def`/`class`."""
    decorators = getattr(node, "decorator_list", None) or []
    return min([d.lineno for d in decorators] + [node.lineno])  # type: ignore[attr-defined]


def definitions_in(body: list[ast.stmt]) -> list[_Node]:
    """The functions and classes that `body` defines at its own scope level, inside compound
    statements included (not those nested in them): the one rule of which blocks are entered,
    for the engine and for placing a diff's hunks."""
    found: list[_Node] = []
    for statement in body:
        if isinstance(statement, (ast.ClassDef,) + _FUNCTIONS):
            found.append(statement)
        elif isinstance(statement, _BLOCKS):
            for field in ("body", "orelse", "finalbody"):
                found.extend(definitions_in(getattr(statement, field, []) or []))
            for holder in [*(getattr(statement, "handlers", None) or []), *(getattr(statement, "cases", None) or [])]:
                found.extend(definitions_in(holder.body))
    return found


# The accessors a property's definitions are decorated with (`@size.setter`): a target's last part.
ACCESSORS = ("getter", "setter", "deleter")


def _role(node: _Node) -> str | None:
    """What a definition is among those of its name: "overload" (a `typing.overload` stub, which
    never runs), a property's "getter", "setter" or "deleter", or None (a plain definition)."""
    for decorator in getattr(node, "decorator_list", ()):
        if (isinstance(decorator, ast.Attribute) and isinstance(decorator.value, ast.Name)
                and decorator.value.id == node.name and decorator.attr in ACCESSORS):
            return decorator.attr
        name = decorator.attr if isinstance(decorator, ast.Attribute) else getattr(decorator, "id", "")
        if name == "overload":
            return "overload"
        if name.endswith("property"):
            return "getter"
    return None


def _paths(tree: ast.Module, parts: list[str]) -> tuple[list[list[ast.AST]], str]:
    """The nodes down to every definition named by `parts`, and a reason when there is none."""
    scopes: list[list[ast.AST]] = [[]]
    bodies: list[list[ast.stmt]] = [tree.body]
    for depth, part in enumerate(parts):
        next_scopes: list[list[ast.AST]] = []
        next_bodies: list[list[ast.stmt]] = []
        for path, body in zip(scopes, bodies):
            for node in definitions_in(body):
                if node.name == part:
                    next_scopes.append(path + [node])
                    next_bodies.append(node.body)
        if not next_scopes:
            where = ".".join(parts[:depth]) or "the module"
            return [], f"{'.'.join(parts[: depth + 1])} is not defined in {where}"
        scopes, bodies = next_scopes, next_bodies
    return scopes, ""


def _lines(paths: list[list[ast.AST]]) -> str:
    return ", ".join(str(first_line(path[-1])) for path in paths)


def find_definitions(tree: ast.Module, qualname: str) -> tuple[list[Definition], str]:
    """Every definition that target `qualname` names, and a reason when there is none.

    A name defined once is that definition. Of a name defined several times at a scope level, the
    ones that can run: not the `@overload` stubs, and for a property, its getter; `name.setter`,
    `name.deleter` and `name.getter` name a property's accessor (unless `name` itself defines a
    function so named). Several left (the branches of an `if`) are all the target's definitions.
    """
    parts = qualname.split(".")
    paths, reason = _paths(tree, parts)
    if not paths and len(parts) > 1 and parts[-1] in ACCESSORS:
        owners = [p for p in _paths(tree, parts[:-1])[0] if isinstance(p[-1], _FUNCTIONS)]
        if owners:
            chosen = [p for p in owners if _role(p[-1]) == parts[-1]]  # type: ignore[arg-type]
            if chosen:
                return [Definition.from_nodes(p) for p in chosen], ""
            name, accessor = parts[-2], parts[-1]
            decorated = f"@{name}.{accessor}" if accessor != "getter" else f"@property or @{name}.getter"
            return [], (f"{'.'.join(parts[:-1])} has no {accessor}: no definition of {name} in "
                        f"{'.'.join(parts[:-2]) or 'the module'} is decorated {decorated}")
    if not paths:
        return [], reason
    functions = [path for path in paths if isinstance(path[-1], _FUNCTIONS)]
    if not functions:
        return [], f"{qualname} is a class, not a function"
    if len(functions) > 1:
        roles = [_role(path[-1]) for path in functions]  # type: ignore[arg-type]
        running = [path for path, role in zip(functions, roles) if role not in ("overload", "setter", "deleter")]
        if not running:
            if all(role == "overload" for role in roles):
                return [], (f"{qualname} is defined {len(functions)} times, each an @overload stub (lines "
                            f"{_lines(functions)}): there is no implementation to edit")
            return [], (f"{qualname} is defined {len(functions)} times (lines {_lines(functions)}), as a property's "
                        f"setter or deleter or an @overload stub: name the accessor, as in {qualname}.setter")
        functions = running
    return [Definition.from_nodes(path) for path in functions], ""


def target_name(tree: ast.Module, qualname: str, start: int) -> str | None:
    """The target that names exactly the function `qualname` whose definition starts at line
    `start` (`Box.size.setter` for a property's setter, say), or None when no target does (an
    `@overload` stub; one of the definitions of a name in the branches of an `if`)."""
    for name in (qualname, *(f"{qualname}.{accessor}" for accessor in ACCESSORS)):
        if [d.start for d in find_definitions(tree, name)[0]] == [start]:
            return name
    return None


def find_class(tree: ast.Module, qualname: str) -> tuple[int, int] | None:
    """The line span of class `qualname` (from its first decorator), when exactly one is defined."""
    parts = qualname.split(".")
    bodies: list[list[ast.stmt]] = [tree.body]
    found: list[_Node] = []
    for part in parts:
        found = [n for body in bodies for n in definitions_in(body) if n.name == part]
        bodies = [n.body for n in found]
    if len(found) != 1 or not isinstance(found[0], ast.ClassDef):
        return None
    return first_line(found[0]), found[0].end_lineno or found[0].lineno


def all_functions(tree: ast.Module) -> list[tuple[str, int, int]]:
    """(qualified name, first line, last line) of every function, nested ones included."""
    found: list[tuple[str, int, int]] = []

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in definitions_in(body):
            name = f"{prefix}{node.name}"
            if isinstance(node, _FUNCTIONS):
                found.append((name, first_line(node), node.end_lineno or node.lineno))
            visit(node.body, name + ".")

    visit(tree.body, "")
    return found


_NEWLOCALS = 0x0002  # CO_NEWLOCALS: set on function code objects, not on class bodies


def locate_in_code(code: types.CodeType, qualname: str, lines: list[str]) -> tuple[list[Definition], str] | None:
    """Find function `qualname` from the module's code objects, without parsing the module.

    Returns None whenever the answer would not be exact (a missing or repeated name, a span
    that cannot be bounded), so the caller falls back to `ast`, which also words the reason.
    Needs the end positions that code objects carry from Python 3.11.
    """
    candidates: list[tuple[types.CodeType, list[tuple[str, int, bool]]]] = [(code, [])]
    for part in qualname.split("."):
        candidates = [
            (const, scopes + [(part, const.co_firstlineno, not const.co_flags & _NEWLOCALS)])
            for parent, scopes in candidates
            for const in parent.co_consts
            if isinstance(const, types.CodeType) and const.co_name == part
        ]
        if len(candidates) != 1:
            return None
    function, scopes = candidates[0]
    if scopes[-1][2]:
        return None  # a class: let the ast path say so
    start = function.co_firstlineno
    first = lines[start - 1].lstrip() if start <= len(lines) else ""
    if not first.startswith(("@", "def ", "async ")):
        return None
    end = max(_last_line(function), start)
    # Lines after the last instruction that are still inside the function (a closing bracket,
    # comments, the rest of a string): everything indented deeper than the definition.
    indent = len(lines[start - 1]) - len(first)
    following = end
    while following < len(lines):
        line = lines[following]
        if not line.strip():
            following += 1
            continue
        if len(line) - len(line.lstrip()) <= indent:
            break
        following += 1
        end = following
    return [Definition(scopes, start, end)], ""


def _last_line(code: types.CodeType) -> int:
    last = max((end for _, end, _, _ in code.co_positions() if end is not None), default=code.co_firstlineno)  # type: ignore[attr-defined]
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            last = max(last, _last_line(const))
    return last
