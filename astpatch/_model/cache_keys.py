"""Caches that depend on patched code: the edit that makes such a cache's key carry the rules.

A library may key on-disk artifacts by a hash of its own source files as they are on disk (torch's
`torch_key()` keys the FX graph, AOTAutograd, autotune and kernel caches that way). astpatch
changes the code in memory only, so that hash would not see a patch, and a process with a rule
could be served an artifact built without it, or the reverse. `KeyWithRules` edits the function
that computes such a key so that each value it returns is passed through
`astpatch.key_with_rules(value, package)`: unchanged when no rule is applied to a module of
`package`, otherwise a hash of it and of the applied rules' fingerprints. A rule made of such
edits is in force only while another rule in force targets a module of its package (see
`RuleSet`), so it costs nothing where no rule touches the package.
"""

from __future__ import annotations

from .edit import Edit, EditResult, Target, dotted_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ast
    from typing import Any

CALL = "key_with_rules"


class KeyWithRules(Edit):
    """Pass every value the target function returns through `astpatch.key_with_rules(value, package)`.

    Only the function's own `return` statements change (not those of functions, classes or
    lambdas defined inside it), each on its own line, so no line moves. `reset`, when given, is
    the name of a method of the module attribute that holds the function (a caching decorator's
    `clear`, say): when the module was imported before `install()` and the function is patched
    live, it is called so a key computed before is computed again.
    """

    kind = "key-with-rules"

    def __init__(self, *, package: str, reset: str | None = None) -> None:
        self.package = dotted_name(package, "package")
        self.reset = dotted_name(reset, "reset") if reset is not None else None

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"package": self.package}
        if self.reset is not None:
            params["reset"] = self.reset
        return params

    def apply(self, target: Target) -> EditResult:
        import ast

        # Text in, text out (no libcst): each returned value gets the call around it, in place.
        header = "if 1:\n" if target.code[:1].isspace() else ""
        lines = (header + target.code).split("\n")
        body = ast.parse("\n".join(lines)).body
        function = body[0].body[0] if header else body[0]  # type: ignore[attr-defined]
        returns = [r.value for r in _own_returns(function) if r.value is not None]
        todo = [value for value in returns if not _calls_key_with_rules(value)]
        if not todo:
            if returns:
                return EditResult.already_fixed(f"its returns already pass through {CALL}")
            return EditResult.no_match(f"{target.qualname} returns no value")
        for value in sorted(todo, key=lambda v: (v.lineno, v.col_offset), reverse=True):
            # `return a, b` is one value, and `return (yield)` has its parentheses outside the
            # value: either needs its own to be an argument.
            inner = isinstance(value, (ast.Tuple, ast.Yield, ast.YieldFrom))
            _insert(lines, value.end_lineno, value.end_col_offset, f"{')' if inner else ''}, \"{self.package}\")")
            _insert(lines, value.lineno, value.col_offset, f'__import__("astpatch").{CALL}({"(" if inner else ""}')
        count = f"{len(todo)} return{'s' if len(todo) > 1 else ''}"
        return EditResult.applied_code("\n".join(lines)[len(header):],
                                       f"{count} of {target.qualname} key by the rules applied to {self.package}")

    def live_applied(self, holder: object) -> None:
        """After live patching: drop a key the function computed before it was patched."""
        if self.reset is not None:
            reset = getattr(holder, self.reset, None)
            if callable(reset):
                reset()


def _own_returns(function: ast.AST) -> list[ast.Return]:
    """The function's own return statements: not those of functions or classes defined in it."""
    import ast

    found: list[ast.Return] = []
    pending = list(ast.iter_child_nodes(function))
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Return):
            found.append(node)
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            pending.extend(ast.iter_child_nodes(node))
    return found


def _calls_key_with_rules(value: ast.expr) -> bool:
    import ast

    return isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr == CALL


def _insert(lines: list[str], line: int | None, offset: int | None, text: str) -> None:
    """Insert `text` in line `line` (1-based) at `offset`, counted in UTF-8 bytes as `ast` counts."""
    assert line is not None and offset is not None
    encoded = lines[line - 1].encode("utf-8")
    lines[line - 1] = (encoded[:offset] + text.encode("utf-8") + encoded[offset:]).decode("utf-8")
