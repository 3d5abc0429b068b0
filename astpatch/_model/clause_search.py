"""The libcst work behind the except-clause edit kinds: find the clause that converts errors,
read what a clause catches, extend a clause's types. Loaded by `apply()`, not when rules are
declared at start-up; every function here is called after libcst is imported."""

from __future__ import annotations

from .edit import EditResult, Target

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    import libcst as cst


def converting_clause(target: Target, converts_to: str, types: tuple[str, ...],  # type: ignore[no-untyped-def]
                       catching: str | None = None):
    """The (try statement, clause) whose clause raises `converts_to` (and catches `catching`, if
    given), or the EditResult that says the source is already fixed (every type in `types` is
    caught there) or does not match."""
    handlers = [(t, h) for t in try_statements(target.node) for h in t.handlers]
    anchors = [(t, h) for t, h in handlers if raises(h, converts_to)]
    if catching is not None:
        anchors = [(t, h) for t, h in anchors if catches(h, catching) and caught(h) is not None]
    wanted = ", ".join(types)
    name = target.qualname
    # The fixed shape first: upstream's fix may itself have added clauses that raise
    # `converts_to` (torch 2.11 has two), which must not read as ambiguity.
    for statement in {id(t): t for t, _ in anchors}.values():
        if all(any(catches(h, a) for h in statement.handlers) for a in types):
            clause = next(h for t, h in anchors if t is statement)
            return EditResult.already_fixed(
                f"the try statement whose `except {code(clause.type)}` raises {converts_to} already catches {wanted}"
            )
    if not anchors:
        fixed = [h for _, h in handlers if all(catches(h, a) for a in types)]
        if fixed:
            return EditResult.already_fixed(
                f"no except clause in {name} raises {converts_to} any more, and "
                f"`except {code(fixed[0].type)}` already catches {wanted}"
            )
        which = f"raises {converts_to}" + (f" and catches {catching}" if catching else "")
        return EditResult.no_match(f"no except clause in {name} {which}, and none catches {wanted}")
    if len(anchors) > 1:
        return EditResult.no_match(
            f"{len(anchors)} except clauses in {name} raise {converts_to}; the edit does not guess which one to extend"
        )
    return anchors[0]


def expression(dotted: str):  # type: ignore[no-untyped-def]
    """A Name or Attribute node for a dotted name, built directly (no parser)."""
    import libcst as cst

    parts = dotted.split(".")
    node: cst.BaseExpression = cst.Name(parts[0])
    for part in parts[1:]:
        node = cst.Attribute(value=node, attr=cst.Name(part))
    return node


# Helpers for the libcst-based edits. They are only called from apply(), after libcst is imported.


def code(node: cst.CSTNode | None) -> str:
    import libcst as cst

    return "" if node is None else cst.Module(body=[]).code_for_node(node)


def statements(block: cst.BaseSuite | cst.CSTNode) -> Iterator[cst.CSTNode]:
    """Every statement in a block, simple (`raise ...`) and compound (`try:`), at any depth, not
    entering nested functions or classes.

    Only statements are visited, not every expression: libcst's `.children` runs a visitor, and
    walking a whole function through it costs milliseconds at import time.
    """

    body = getattr(block, "body", ())
    if not isinstance(body, (list, tuple)):
        return
    for statement in body:
        yield from visit(statement)


def visit(statement: cst.CSTNode) -> Iterator[cst.CSTNode]:
    import libcst as cst

    if isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
        return
    yield statement
    if isinstance(statement, cst.SimpleStatementLine):
        yield from statement.body
        return
    for field in ("body", "orelse", "finalbody"):
        part = getattr(statement, field, None)
        if isinstance(part, (cst.Else, cst.Finally)):
            part = part.body
        if isinstance(part, cst.If):  # an elif
            yield from visit(part)
        elif isinstance(part, cst.BaseSuite):
            yield from statements(part)
    for handler in getattr(statement, "handlers", ()) or ():
        yield from statements(handler.body)
    for case in getattr(statement, "cases", ()) or ():
        yield from statements(case.body)


def try_statements(function: cst.FunctionDef) -> list[cst.Try]:
    import libcst as cst

    return [n for n in statements(function.body) if isinstance(n, (cst.Try, cst.TryStar))]  # type: ignore[misc]


def dotted(node: cst.BaseExpression) -> str | None:
    import libcst as cst

    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = dotted(node.value)
        return None if base is None else f"{base}.{node.attr.value}"
    return None


def caught(handler: cst.ExceptHandler) -> list[str] | None:
    """The dotted names a handler catches; None for a bare `except:`."""
    import libcst as cst

    if handler.type is None:
        return None
    elements = handler.type.elements if isinstance(handler.type, cst.Tuple) else [handler.type]
    names = []
    for element in elements:
        value = element.value if isinstance(element, cst.Element) else element
        name = dotted(value)  # type: ignore[arg-type]
        if name is not None:
            names.append(name)
    return names


def catches(handler: cst.ExceptHandler, exception: str) -> bool:
    names = caught(handler)
    return names is None or exception in names


def raises(handler: cst.ExceptHandler, exception: str) -> bool:
    """Whether the handler's body raises `exception` (called or not)."""
    import libcst as cst

    for node in statements(handler.body):
        if isinstance(node, cst.Raise) and node.exc is not None:
            raised = node.exc.func if isinstance(node.exc, cst.Call) else node.exc
            name = dotted(raised)
            if name == exception or (name is not None and name.endswith("." + exception)):
                return True
    return False


def with_types(current: cst.BaseExpression, extra: list[cst.BaseExpression]) -> cst.BaseExpression:
    """`current` with `extra` appended, in the layout the clause already uses."""
    import libcst as cst

    if isinstance(current, cst.Tuple) and current.elements:
        elements = list(current.elements)
        last = elements[-1]
        # Separate the new elements the way the existing ones are separated (one per line in a
        # vertical tuple), and keep whatever followed the last one (a trailing comma, a newline
        # before the closing parenthesis) after the new last one.
        if len(elements) > 1 and isinstance(elements[-2].comma, cst.Comma):
            separator = elements[-2].comma
        else:
            separator = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
        elements[-1] = last.with_changes(comma=separator)
        for i, value in enumerate(extra):
            comma = last.comma if i == len(extra) - 1 else separator
            elements.append(cst.Element(value=value, comma=comma))
        return current.with_changes(elements=elements)
    # A single type: `except TypeError as e` becomes `except (TypeError, ValueError) as e`,
    # reusing the parentheses if the single type had them.
    lpar, rpar = getattr(current, "lpar", ()), getattr(current, "rpar", ())
    inner = current.with_changes(lpar=[], rpar=[]) if lpar else current
    elements = [cst.Element(value=inner, comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))]
    for i, value in enumerate(extra):
        is_last = i == len(extra) - 1
        comma = cst.MaybeSentinel.DEFAULT if is_last else cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
        elements.append(cst.Element(value=value, comma=comma))
    if lpar:
        return cst.Tuple(elements=elements, lpar=lpar, rpar=rpar)
    return cst.Tuple(elements=elements)
