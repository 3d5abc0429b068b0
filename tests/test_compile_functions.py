"""A target function indented by a compound statement, compiled on its own: the code a full compile gives.

At import the module's upstream code is at hand, so only the edited function is compiled, in a
wrapper that must reproduce its indentation; a function under an `if`, `try`, `with`, loop or
`match` case is indented deeper than its classes alone make it. The oracle is a plain compile of
the patched text (for an edit that moves the function past the end of the file, that function's
code from it, moved to the line it is shown at, in the module's original code).
"""

from __future__ import annotations

import textwrap
import types

import pytest

import astpatch
from astpatch._base import outcomes as oc
from astpatch._base.lines import patched_lines, split_lines
from astpatch._engine import compile as engine_compile
from astpatch._engine.rewrite import rewrite

from conftest import code_fields

PATH = "module.py"
BODY = "y = x + 1"  # the line each edit works on, in every case's target


class EditBody(astpatch.Edit):
    """Rewrites the target's `y = x + 1` line in place, or adds a line after it."""

    kind = "test-edit-body"

    def __init__(self, grow: bool) -> None:
        self.grow = grow

    def params(self):
        return {"grow": self.grow}

    def apply(self, target):
        lines = target.code.splitlines(keepends=True)
        (i,) = [i for i, line in enumerate(lines) if line.strip() == BODY]
        indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
        new = [lines[i], f"{indent}y = y * 3\n"] if self.grow else [f"{indent}y = x + 2\n"]
        return astpatch.EditResult.applied_code("".join(lines[:i] + new + lines[i + 1:]))


# Each case: the module's text, and the target's qualified name.
CASES = {
    "if-else": ('''\
        import sys

        if sys.version_info < (3, 0):
            def other(x):
                return x
        else:
            def target(x):
                y = x + 1
                return sys.hexversion and y
        ''', "target"),
    "if-branch": ('''\
        import sys

        if sys.version_info >= (3, 0):
            def target(x):
                y = x + 1
                return [y for _ in range(1)][0]
        else:
            target = None
        ''', "target"),
    "try-body": ('''\
        import sys

        try:
            def target(x, *args, **kwargs):
                y = x + 1
                return lambda: y
        except ImportError:
            pass
        ''', "target"),
    "except-handler": ('''\
        import sys

        try:
            import not_a_module_anywhere
        except ImportError:
            def target(x):
                y = x + 1
                return y
        ''', "target"),
    "finally": ('''\
        import sys

        try:
            pass
        except Exception:
            raise
        finally:
            def target(x):
                y = x + 1
                return y
        ''', "target"),
    "with-decorated": ('''\
        import contextlib


        def keep(f):
            return f


        with contextlib.suppress(ImportError):
            @keep
            def target(x):
                y = x + 1
                return y
        ''', "target"),
    "for-else": ('''\
        import sys

        for _ in range(1):
            pass
        else:
            def target(x):
                y = x + 1
                return y
        ''', "target"),
    "while": ('''\
        import sys

        n = 0
        while n < 1:
            n += 1
            async def target(x):
                y = x + 1
                return y
        ''', "target"),
    "match-case": ('''\
        import sys

        match sys.platform:
            case "no-such-platform":
                pass
            case _:
                def target(x):
                    y = x + 1
                    return y
        ''', "target"),
    "if-in-try": ('''\
        import sys

        try:
            if sys:
                def target(x):
                    y = x + 1
                    return y
        finally:
            pass
        ''', "target"),
    "tab-indented-if": ('''\
        import sys

        if sys:
        \tdef target(x):
        \t\ty = x + 1
        \t\treturn y
        '''.replace("\\t", "\t"), "target"),
    "class-in-if-method-in-try": ('''\
        import sys

        if sys:
            class Holder:
                try:
                    def target(self, x):
                        y = x + 1
                        return super().__hash__() and self.__secret + y
                except Exception:
                    pass
        ''', "Holder.target"),
    "class-in-with-inner-class-in-for": ('''\
        import contextlib

        with contextlib.suppress(ImportError):
            class Outer:
                for _ in range(1):
                    class Inner:
                        while True:
                            def target(self, x):
                                y = x + 1
                                return __class__, y
                            break
        ''', "Outer.Inner.target"),
}


def _source(case: str) -> str:
    return textwrap.dedent(CASES[case][0])


def _rewrite(source: str, target: str, grow: bool, monkeypatch) -> tuple[astpatch.Rule, object, list[str]]:
    """The rewrite at import (with the module's upstream code), and which compile paths it took."""
    taken: list[str] = []
    for name in ("compile_functions", "compile_patched", "compile_remapped"):
        real = getattr(engine_compile, name)

        def spy(*args, _real=real, _name=name, **kwargs):
            taken.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(engine_compile, name, spy)
    rule = astpatch.Rule(id="edit-body", summary="s", module="m", target=target, edit=EditBody(grow), upstream="u")
    upstream = compile(source, PATH, "exec", dont_inherit=True)
    result = rewrite("m", PATH, source, [rule], {}, upstream=upstream)
    assert [(o.status, o.reason) for o in result.outcomes] == [(oc.APPLIED, "")]
    return rule, result, taken


def _find(code: types.CodeType, names: list[str], line: int) -> types.CodeType:
    """The code object at `names` (each the first of its name, the last one starting at `line`)."""
    for i, name in enumerate(names):
        code = next(c for c in code.co_consts if isinstance(c, types.CodeType) and c.co_name == name
                    and (i < len(names) - 1 or c.co_firstlineno == line))
    return code


def _moved(code: types.CodeType, delta: int) -> types.CodeType:
    """`code` as a compile of its text `delta` lines further down gives it (line tables are relative)."""
    consts = tuple(_moved(c, delta) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return code.replace(co_firstlineno=code.co_firstlineno + delta, co_consts=consts)


def _swapped(code: types.CodeType, names: list[str], line: int, new: types.CodeType) -> types.CodeType:
    consts = list(code.co_consts)
    for i, c in enumerate(consts):
        if isinstance(c, types.CodeType) and c.co_name == names[0] and (len(names) > 1 or c.co_firstlineno == line):
            consts[i] = new if len(names) == 1 else _swapped(c, names[1:], line, new)
            return code.replace(co_consts=tuple(consts))
    raise LookupError(names)


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_edit_that_keeps_the_line_count_compiles_as_the_whole_patched_text(case, monkeypatch):
    source = _source(case)
    _, result, taken = _rewrite(source, CASES[case][1], False, monkeypatch)
    assert taken == ["compile_functions"]  # only the function was compiled
    (span,) = result.spans
    assert span.line_delta == 0 and span.moved_to == 0
    text = "".join(patched_lines(split_lines(source), result.spans))
    assert "y = x + 2" in text
    assert code_fields(result.code) == code_fields(compile(text, PATH, "exec", dont_inherit=True))


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_edit_that_adds_a_line_compiles_as_the_whole_patched_text_moved_past_the_end(case, monkeypatch):
    source = _source(case)
    names = CASES[case][1].split(".")
    _, result, taken = _rewrite(source, CASES[case][1], True, monkeypatch)
    assert taken == ["compile_functions"]
    (span,) = result.spans
    assert span.line_delta == 1 and span.moved_to > len(split_lines(source))
    text = "".join(patched_lines(split_lines(source), result.spans))
    assert "y = y * 3" in text
    # The oracle: the function from a full compile of the patched text, shown at the line it is
    # moved to, in the module's original code (every other line keeps its number).
    whole = _find(compile(text, PATH, "exec", dont_inherit=True), names, span.start)
    expected = _moved(whole, span.moved_to - span.start)
    assert code_fields(_find(result.code, names, span.moved_to)) == code_fields(expected)
    original = compile(source, PATH, "exec", dont_inherit=True)
    assert code_fields(result.code) == code_fields(_swapped(original, names, span.start, expected))


def test_too_few_lines_above_for_the_wrapper_compiles_the_patched_text(monkeypatch):
    """A function on line 2 under an `if`, in a module that imports: the wrapper's import line and
    `if` header take lines 1 and 2, so the function cannot be compiled at its line alone."""
    source = textwrap.dedent('''\
        if 1:
            def target(x):
                y = x + 1
                return sys.hexversion and y
        import sys
        ''')
    _, result, taken = _rewrite(source, "target", False, monkeypatch)
    assert taken == ["compile_functions", "compile_patched"]
    text = "".join(patched_lines(split_lines(source), result.spans))
    assert code_fields(result.code) == code_fields(compile(text, PATH, "exec", dont_inherit=True))


def test_the_patched_functions_run_as_edited(monkeypatch):
    """The swapped-in code is the code that runs, under each compound statement."""
    for case in ("if-else", "try-body", "match-case", "class-in-if-method-in-try"):
        for grow, expected in ((False, 3), (True, 6)):
            _, result, _ = _rewrite(_source(case), CASES[case][1], grow, monkeypatch)
            namespace: dict = {}
            exec(result.code, namespace)
            if case == "class-in-if-method-in-try":
                holder = namespace["Holder"]()
                holder._Holder__secret = 0
                assert holder.target(1) == expected, case
            elif case == "try-body":
                assert namespace["target"](1)() == expected, case
            else:
                assert namespace["target"](1) == expected, case
