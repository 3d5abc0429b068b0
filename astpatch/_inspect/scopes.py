"""The scopes of a module that a diff's hunks can belong to: functions, classes, the top level."""

from __future__ import annotations

import ast

from .._engine.locate import definitions_in, first_line, target_name


class Changed:
    """A changed line of a hunk: at line `at` of the source, or (`at` None) inserted between lines
    `prev` and `next`, the neighbours it has on the side of the hunk found in the source."""

    __slots__ = ("index", "at", "prev", "next", "text")

    def __init__(self, index: int, at: int | None, prev: int, next: int, text: str) -> None:
        self.index = index
        self.at = at
        self.prev = prev
        self.next = next
        self.text = text

    def coordinates(self) -> tuple[int, int]:
        """Where it is, as line n = 2n and the gap after line n = 2n + 1: a range to test overlaps."""
        return (2 * self.at, 2 * self.at) if self.at is not None else (2 * self.prev + 1, 2 * self.next - 1)


class Scope:
    """A function, a class or the module's top level (qualname ""), and the lines it spans.

    `header_end` is the last line of its decorators and `def`/`class` line: a change there belongs
    to the enclosing scope, which binds the name (a rename, a new decorator, a new signature).
    `target` is the name a rule gives the engine for exactly this scope (`Box.size.setter` for a
    property's setter), or None when there is none (see `findable`).
    """

    __slots__ = ("qualname", "kind", "start", "end", "header_end", "indent", "parent", "target")

    def __init__(self, qualname: str, kind: str, start: int, end: int, header_end: int, indent: int,
                 parent: Scope | None) -> None:
        self.qualname = qualname
        self.kind = kind  # "function", "class" or "module"
        self.start = start
        self.end = end
        self.header_end = header_end
        self.indent = indent
        self.parent = parent
        self.target: str | None = qualname

    @property
    def label(self) -> str:
        return self.target or self.qualname or "the module's top level"

    def contains(self, change: Changed) -> bool:
        """Whether a changed line is in this scope's body.

        A line inserted just after the scope's last line belongs to it when it is indented deeper
        than the `def`/`class` line (its neighbours are then a blank line and the next definition).
        """
        if self.kind == "module":
            return True
        if change.at is not None:
            return self.header_end < change.at <= self.end
        if self.header_end <= change.prev and change.next <= self.end:
            return True
        return self.header_end <= change.prev <= self.end < change.next and _indent(change.text) > self.indent


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip()) if text.strip() else -1


def scopes_of(tree: ast.Module, lines: list[str]) -> list[Scope]:
    """The module's top level, then every function and class, nested ones included: those the
    engine finds by qualified name (`definitions_in` decides which blocks hold definitions)."""
    root = Scope("", "module", 1, len(lines), 0, -1, None)
    found = [root]

    def visit(body: list[ast.stmt], parent: Scope) -> None:
        for statement in definitions_in(body):
            header_end = first_line(statement.body[0]) - 1
            while header_end > statement.lineno and lines[header_end - 1].strip()[:1] in ("", "#"):
                header_end -= 1  # comments between the header and the first statement are the body's
            scope = Scope(f"{parent.qualname}.{statement.name}" if parent.qualname else statement.name,
                          "class" if isinstance(statement, ast.ClassDef) else "function", first_line(statement),
                          statement.end_lineno or statement.lineno, max(header_end, statement.lineno),
                          statement.col_offset, parent)
            found.append(scope)
            visit(statement.body, scope)

    visit(tree.body, root)
    counts: dict[str, int] = {}
    for scope in found:
        counts[scope.qualname] = counts.get(scope.qualname, 0) + 1
    for scope in found:
        if counts[scope.qualname] > 1:  # a property's accessors, overloads, the branches of an `if`
            scope.target = target_name(tree, scope.qualname, scope.start) if scope.kind == "function" else None
    return found


def common(a: Scope, b: Scope) -> Scope:
    """The innermost scope that holds both."""
    chain = []
    scope: Scope | None = a
    while scope is not None:
        chain.append(scope)
        scope = scope.parent
    while b not in chain:
        assert b.parent is not None
        b = b.parent
    return b


def findable(scope: Scope) -> Scope:
    """`scope`, or the nearest enclosing scope that a target names alone: a hunk in an `@overload`
    stub, or in one of the definitions of a name in the branches of an `if` (which a rule on that
    name edits all together), is a change of the scope that holds them."""
    while scope.target is None:
        assert scope.parent is not None
        scope = scope.parent
    return scope


# --- Placing hunks ---------------------------------------------------------------------------
