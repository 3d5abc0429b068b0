"""The except-clause edit kinds: add exception types to a clause, or add a whole clause.

Both find the clause by what it does (its body raises `converts_to`), and both recognise the
fixed shape by the types caught, not by the clause's body, because upstream may rewrite the body
when it fixes the bug (torch 2.13 calls a helper instead of raising directly).
"""

from __future__ import annotations

from .edit import Edit, EditResult, Target, dotted_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    import libcst as cst


class AddExceptTypes(Edit):
    """Add exception types to the except clause that turns errors into `converts_to`.

    The clause is found by what it does: its body raises `converts_to` (for example
    `raise BypassFxGraphCache(...) from e`). Exactly one such clause must exist in the target
    to extend (nested functions and classes are not searched); the edit does not guess.

    The fixed shape is recognised by the types caught, not by the clause's body, because
    upstream may rewrite the body when it fixes the bug (torch 2.13 calls a helper instead of
    raising directly): the source is already fixed when the try statement holding that clause
    catches every added type, or, where no clause raises `converts_to` any more, when some
    except clause of the target catches every added type.
    """

    kind = "add-except-types"

    def __init__(self, *, add: tuple[str, ...] | list[str] | str, converts_to: str, catching: str | None = None) -> None:
        if isinstance(add, str):
            add = (add,)
        if not add:
            raise ValueError("add must name at least one exception type")
        self.add = tuple(dotted_name(a, "each type in add") for a in add)
        self.converts_to = dotted_name(converts_to, "converts_to")
        # Among several clauses that raise `converts_to`, the one that also catches this type.
        self.catching = dotted_name(catching, "catching") if catching is not None else None

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"add": self.add, "converts_to": self.converts_to}
        if self.catching is not None:
            params["catching"] = self.catching
        return params

    def apply(self, target: Target) -> EditResult:

        found = _converting_clause(target, self.converts_to, self.add, self.catching)
        if isinstance(found, EditResult):
            return found
        statement, handler = found
        missing = [a for a in self.add if not any(_catches(h, a) for h in statement.handlers)]
        if handler.type is None:  # a bare `except:` catches everything: found fixed above
            raise AssertionError("unreachable: a bare except catches every type")
        new_type = _with_types(handler.type, [_expression(m) for m in missing])
        node = target.node.deep_replace(handler, handler.with_changes(type=new_type))
        return EditResult.applied(node, f"added {', '.join(missing)} to `except {_code(handler.type)}`")


class AddExceptClause(Edit):
    """Add a whole except clause after the one that turns errors into `converts_to`.

    `clause` is the clause's source (`except RuntimeError as e:` and its body), at any
    indentation; it is placed at the indentation of the try statement it joins. The converting
    clause is found as for `AddExceptTypes`, and so is the fixed shape: the source is already
    fixed when that try statement already catches every type the new clause catches (or, where
    no clause raises `converts_to` any more, when some except clause of the target does).
    """

    kind = "add-except-clause"

    def __init__(self, *, clause: str, after_clause_raising: str, catching: str | None = None) -> None:
        self.clause = _dedent(clause)
        self.converts_to = dotted_name(after_clause_raising, "after_clause_raising")
        self.catching = dotted_name(catching, "catching") if catching is not None else None
        if not self.clause.lstrip().startswith("except"):
            raise ValueError(f"clause must be an except clause, starting with 'except', got {self.clause[:40]!r}")

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"clause": self.clause, "after_clause_raising": self.converts_to}
        if self.catching is not None:
            params["catching"] = self.catching
        return params

    def describe(self) -> str:
        return f"{self.kind}({self.clause.splitlines()[0].strip()!r} after the clause raising {self.converts_to})"

    def _handler(self) -> cst.ExceptHandler:
        import libcst as cst

        # The clause, dedented, parsed inside a try statement of its own; libcst keeps its body's
        # indentation relative, so it lands at the right depth in the target's try statement.
        statement = cst.parse_statement("try:\n    pass\n" + self.clause)
        assert isinstance(statement, cst.Try)
        return statement.handlers[0]

    def apply(self, target: Target) -> EditResult:
        handler = self._handler()
        caught = _caught(handler)
        if caught is None:
            return EditResult.no_match("a bare `except:` clause is not added: name the exceptions it catches")
        found = _converting_clause(target, self.converts_to, tuple(caught), self.catching)
        if isinstance(found, EditResult):
            return found
        statement, anchor = found
        handlers = list(statement.handlers)
        position = next(i for i, h in enumerate(handlers) if h is anchor) + 1
        handlers.insert(position, handler)
        node = target.node.deep_replace(statement, statement.with_changes(handlers=handlers))
        return EditResult.applied(node, f"added `except {_code(handler.type)}` after `except {_code(anchor.type)}`")


def _dedent(text: str) -> str:
    """`text` without its common indentation or surrounding blank lines (textwrap costs
    milliseconds to import, and rules are declared at start-up)."""
    lines = text.split("\n")
    indents = [line[: len(line) - len(line.lstrip())] for line in lines if line.strip()]
    common = min(indents, key=len) if indents else ""
    while common and not all(i.startswith(common) for i in indents):
        common = common[:-1]
    return "\n".join(line[len(common):] if line.strip() else "" for line in lines).strip("\n") + "\n"


def _converting_clause(target: Target, converts_to: str, types: tuple[str, ...],  # type: ignore[no-untyped-def]
                       catching: str | None = None):
    """The (try statement, clause) whose clause raises `converts_to` (and catches `catching`, if
    given), or the EditResult that says the source is already fixed (every type in `types` is
    caught there) or does not match."""
    handlers = [(t, h) for t in _try_statements(target.node) for h in t.handlers]
    anchors = [(t, h) for t, h in handlers if _raises(h, converts_to)]
    if catching is not None:
        anchors = [(t, h) for t, h in anchors if _catches(h, catching) and _caught(h) is not None]
    wanted = ", ".join(types)
    name = target.qualname
    # The fixed shape first: upstream's fix may itself have added clauses that raise
    # `converts_to` (torch 2.11 has two), which must not read as ambiguity.
    for statement in {id(t): t for t, _ in anchors}.values():
        if all(any(_catches(h, a) for h in statement.handlers) for a in types):
            clause = next(h for t, h in anchors if t is statement)
            return EditResult.already_fixed(
                f"the try statement whose `except {_code(clause.type)}` raises {converts_to} already catches {wanted}"
            )
    if not anchors:
        fixed = [h for _, h in handlers if all(_catches(h, a) for a in types)]
        if fixed:
            return EditResult.already_fixed(
                f"no except clause in {name} raises {converts_to} any more, and "
                f"`except {_code(fixed[0].type)}` already catches {wanted}"
            )
        which = f"raises {converts_to}" + (f" and catches {catching}" if catching else "")
        return EditResult.no_match(f"no except clause in {name} {which}, and none catches {wanted}")
    if len(anchors) > 1:
        return EditResult.no_match(
            f"{len(anchors)} except clauses in {name} raise {converts_to}; the edit does not guess which one to extend"
        )
    return anchors[0]


def _expression(dotted: str):  # type: ignore[no-untyped-def]
    """A Name or Attribute node for a dotted name, built directly (no parser)."""
    import libcst as cst

    parts = dotted.split(".")
    node: cst.BaseExpression = cst.Name(parts[0])
    for part in parts[1:]:
        node = cst.Attribute(value=node, attr=cst.Name(part))
    return node


# Helpers for the libcst-based edits. They are only called from apply(), after libcst is imported.


def _code(node: cst.CSTNode | None) -> str:
    import libcst as cst

    return "" if node is None else cst.Module(body=[]).code_for_node(node)


def _statements(block: cst.BaseSuite | cst.CSTNode) -> Iterator[cst.CSTNode]:
    """Every statement in a block, simple (`raise ...`) and compound (`try:`), at any depth, not
    entering nested functions or classes.

    Only statements are visited, not every expression: libcst's `.children` runs a visitor, and
    walking a whole function through it costs milliseconds at import time.
    """

    body = getattr(block, "body", ())
    if not isinstance(body, (list, tuple)):
        return
    for statement in body:
        yield from _visit(statement)


def _visit(statement: cst.CSTNode) -> Iterator[cst.CSTNode]:
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
            yield from _visit(part)
        elif isinstance(part, cst.BaseSuite):
            yield from _statements(part)
    for handler in getattr(statement, "handlers", ()) or ():
        yield from _statements(handler.body)
    for case in getattr(statement, "cases", ()) or ():
        yield from _statements(case.body)


def _try_statements(function: cst.FunctionDef) -> list[cst.Try]:
    import libcst as cst

    return [n for n in _statements(function.body) if isinstance(n, (cst.Try, cst.TryStar))]  # type: ignore[misc]


def _dotted(node: cst.BaseExpression) -> str | None:
    import libcst as cst

    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr.value}"
    return None


def _caught(handler: cst.ExceptHandler) -> list[str] | None:
    """The dotted names a handler catches; None for a bare `except:`."""
    import libcst as cst

    if handler.type is None:
        return None
    elements = handler.type.elements if isinstance(handler.type, cst.Tuple) else [handler.type]
    names = []
    for element in elements:
        value = element.value if isinstance(element, cst.Element) else element
        name = _dotted(value)  # type: ignore[arg-type]
        if name is not None:
            names.append(name)
    return names


def _catches(handler: cst.ExceptHandler, exception: str) -> bool:
    names = _caught(handler)
    return names is None or exception in names


def _raises(handler: cst.ExceptHandler, exception: str) -> bool:
    """Whether the handler's body raises `exception` (called or not)."""
    import libcst as cst

    for node in _statements(handler.body):
        if isinstance(node, cst.Raise) and node.exc is not None:
            raised = node.exc.func if isinstance(node.exc, cst.Call) else node.exc
            name = _dotted(raised)
            if name == exception or (name is not None and name.endswith("." + exception)):
                return True
    return False


def _with_types(current: cst.BaseExpression, extra: list[cst.BaseExpression]) -> cst.BaseExpression:
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
