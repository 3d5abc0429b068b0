"""The except-clause edit kinds: add exception types to a clause, or add a whole clause.

Both find the clause by what it does (its body raises `converts_to`), and both recognise the
fixed shape by the types caught, not by the clause's body, because upstream may rewrite the body
when it fixes the bug (torch 2.13 calls a helper instead of raising directly).
"""

from __future__ import annotations

from .edit import Edit, EditResult, Target, dotted_name

TYPE_CHECKING = False
if TYPE_CHECKING:
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
        from . import clause_search as clauses  # libcst work, loaded when a rewrite happens

        found = clauses.converting_clause(target, self.converts_to, self.add, self.catching)
        if isinstance(found, EditResult):
            return found
        statement, handler = found
        missing = [a for a in self.add if not any(clauses.catches(h, a) for h in statement.handlers)]
        if handler.type is None:  # a bare `except:` catches everything: found fixed above
            raise AssertionError("unreachable: a bare except catches every type")
        new_type = clauses.with_types(handler.type, [clauses.expression(m) for m in missing])
        node = target.node.deep_replace(handler, handler.with_changes(type=new_type))
        return EditResult.applied(node, f"added {', '.join(missing)} to `except {clauses.code(handler.type)}`")


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
        from . import clause_search as clauses  # libcst work, loaded when a rewrite happens

        handler = self._handler()
        caught = clauses.caught(handler)
        if caught is None:
            return EditResult.no_match("a bare `except:` clause is not added: name the exceptions it catches")
        found = clauses.converting_clause(target, self.converts_to, tuple(caught), self.catching)
        if isinstance(found, EditResult):
            return found
        statement, anchor = found
        handlers = list(statement.handlers)
        position = next(i for i, h in enumerate(handlers) if h is anchor) + 1
        handlers.insert(position, handler)
        node = target.node.deep_replace(statement, statement.with_changes(handlers=handlers))
        return EditResult.applied(node, f"added `except {clauses.code(handler.type)}` after `except {clauses.code(anchor.type)}`")


def _dedent(text: str) -> str:
    """`text` without its common indentation or surrounding blank lines (textwrap costs
    milliseconds to import, and rules are declared at start-up)."""
    lines = text.split("\n")
    indents = [line[: len(line) - len(line.lstrip())] for line in lines if line.strip()]
    common = min(indents, key=len) if indents else ""
    while common and not all(i.startswith(common) for i in indents):
        common = common[:-1]
    return "\n".join(line[len(common):] if line.strip() else "" for line in lines).strip("\n") + "\n"
