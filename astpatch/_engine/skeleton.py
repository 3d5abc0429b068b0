"""Compiling a module-level change without compiling again the definitions it leaves alone.

A change outside function bodies is compiled with the whole module (`compile_remapped`), and
nearly all of that time goes to functions and classes the change does not touch, whose code the
module's upstream `.pyc` already holds. So before compiling, each of them is cut down to a stub:
its header stays as written (decorators, defaults, annotations, bases and keywords run in the
enclosing code), and its body becomes one statement that gives the stub the free variables of
upstream's code (the enclosing code builds the closure from them). After compiling, each stub's
code object is replaced by upstream's, found by name and first line: a definition the change
leaves alone keeps both, and compiles to the same code.
"""

from __future__ import annotations

import ast
import bisect
import types

from .._base.lines import Span

_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
# The free variables a stub can be given: none, or the `__class__` cell of a method using super().
_STUB_FREEVARS = ((), ("__class__",))

Stubs = dict  # (name, first line) -> upstream's code, or the Stubs inside a class that is compiled


class Skeleton:
    """The definitions of a parsed patched module that were cut down to stubs (`stubs`), and how
    to put upstream's code in their place once the module is compiled (`fill`)."""

    def __init__(self, tree: ast.Module, patched: list[str], spans: list[Span], number: list[int],
                 upstream: types.CodeType) -> None:
        self._patched = patched
        self._number = number  # patched line -> line in the file as shown
        # The patched lines of each span, as (first, last); lines removed with nothing in their
        # place are (p, p - 1), p being the patched line after them.
        self._changed: list[tuple[int, int]] = []
        shift = 0
        for span in spans:
            self._changed.append((span.start + shift, span.start + shift + len(span.lines) - 1))
            shift += span.line_delta
        self._global_lines = [i for i, line in enumerate(patched, 1) if "global" in line]
        self.stubs: Stubs = {}
        self._cut(tree.body, _codes(upstream), False, len(patched) + 1, self.stubs)

    def fill(self, code: types.CodeType) -> types.CodeType | None:
        """`code`, the compiled skeleton, with upstream's code in place of every stub; None when a
        stub did not come out where and as expected (the module is then compiled whole)."""
        try:
            return _fill(code, self.stubs)
        except LookupError:
            return None

    def _cut(self, body: list[ast.stmt], known: dict[tuple[str, int], types.CodeType], records: bool, after: int,
             stubs: Stubs) -> None:
        """Cut the definitions in `body` that no span touches, given upstream's code objects of
        the enclosing scope (`known`); `after` is the first line of whatever follows `body`."""
        for i, node in enumerate(body):
            end = _first(body[i + 1]) if i + 1 < len(body) else after
            if isinstance(node, _DEFINITIONS):
                self._definition(node, end, known, records, stubs)
            else:  # if, for, while, with, try, match: the definitions in them are the scope's
                blocks = _blocks(node)
                for j, block in enumerate(blocks):
                    self._cut(block, known, records, _first(blocks[j + 1][0]) if j + 1 < len(blocks) else end, stubs)

    def _definition(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef, after: int,
                    known: dict[tuple[str, int], types.CodeType], records: bool, stubs: Stubs) -> None:
        first, last = _first(node), node.end_lineno or node.lineno
        key = (node.name, self._number[min(first, len(self._number) - 1)])
        code = known.get(key)
        if code is None or getattr(node, "type_params", None):
            return  # not upstream's definition there (or a generic one, which has a scope of its own)
        # A span up to the next statement counts: the lines it replaced may have ended this definition.
        if any(p <= after and q >= first for p, q in self._changed):
            if isinstance(node, ast.ClassDef):  # the class body is compiled; its untouched methods need not be
                inner: Stubs = {}
                self._cut(node.body, _codes(code), "__static_attributes__" in code.co_names, after, inner)
                if inner:
                    stubs[key] = inner
            return
        if isinstance(node, ast.ClassDef):
            if code.co_freevars:
                return
        elif code.co_freevars not in _STUB_FREEVARS:
            return
        elif records and "self" in "".join(self._patched[first - 1 : last]):
            return  # the class body records `__static_attributes__` from its methods' `self.x = ...`
        body: list[ast.stmt] = []
        # A `global` statement at any depth makes the module's own code use the name as a global:
        # the stub declares the same names (in a function of its own, where no parameter clashes).
        if bisect.bisect_right(self._global_lines, last) > bisect.bisect_left(self._global_lines, first):
            declared = list(dict.fromkeys(n for g in ast.walk(node) if isinstance(g, ast.Global) for n in g.names))
            if any(n.startswith("__") and not n.endswith("__") for n in declared):
                return  # mangled by whichever class encloses the statement
            if declared:
                body.append(ast.parse(f"def _():\n global {', '.join(declared)}\n").body[0])
        body.append(ast.Expr(ast.Name("__class__", ast.Load())) if code.co_freevars else ast.Pass())
        for part in (p for statement in body for p in ast.walk(statement)):
            if "lineno" in part._attributes:
                part.lineno, part.col_offset = node.lineno, node.col_offset  # type: ignore[attr-defined]
                part.end_lineno, part.end_col_offset = node.lineno, node.col_offset  # type: ignore[attr-defined]
        node.body = body
        stubs[key] = code


def _codes(code: types.CodeType) -> dict[tuple[str, int], types.CodeType]:
    return {(c.co_name, c.co_firstlineno): c for c in code.co_consts if isinstance(c, types.CodeType)}


def _first(node: ast.stmt) -> int:
    """The first line of a statement: a decorated definition starts at its first decorator."""
    decorators = getattr(node, "decorator_list", None)
    return min(node.lineno, *(d.lineno for d in decorators)) if decorators else node.lineno


def _blocks(node: ast.stmt) -> list[list[ast.stmt]]:
    """The statement lists of a compound statement, in the order of the text."""
    blocks = []
    for field in node._fields:
        value = getattr(node, field)
        if isinstance(value, list) and value:
            if isinstance(value[0], ast.stmt):
                blocks.append(value)
            elif isinstance(value[0], (ast.excepthandler, ast.match_case)):
                blocks.extend(part.body for part in value)
    return blocks


def _fill(code: types.CodeType, stubs: Stubs) -> types.CodeType:
    consts = list(code.co_consts)
    filled = 0
    for i, const in enumerate(consts):
        if not isinstance(const, types.CodeType):
            continue
        upstream = stubs.get((const.co_name, const.co_firstlineno))
        if upstream is None:
            continue
        if isinstance(upstream, dict):
            consts[i] = _fill(const, upstream)
        elif const.co_freevars != upstream.co_freevars or (getattr(const, "co_qualname", None)
                                                           != getattr(upstream, "co_qualname", None)):
            raise LookupError(const.co_name)  # the enclosing code was built for another closure or name
        else:
            consts[i] = upstream
        filled += 1
    if filled != len(stubs):
        raise LookupError(code.co_name)
    return code.replace(co_consts=tuple(consts))
