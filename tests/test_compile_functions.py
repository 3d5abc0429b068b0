"""A target function indented by a compound statement, compiled on its own: the code a full compile gives.

At import the module's upstream code is at hand, so only the edited function is compiled, in a
wrapper that must reproduce its indentation; a function under an `if`, `try`, `with`, loop or
`match` case is indented deeper than its classes alone make it. The oracle is a plain compile of
the patched text (for an edit that adds a line, that compile with every line numbered where
`linecache` shows it: the function's other lines at their lines in the file, the new one past its
end).
"""

from __future__ import annotations

import textwrap

import pytest

import astpatch
from astpatch._base import outcomes as oc
from astpatch._base.lines import Span, linecache_lines, patched_lines, split_lines
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


def shown_numbers(count: int, spans) -> list[int]:
    """The line each line of the patched text is shown at (index 0 unused), from the spans: a line
    no span touches keeps its number, a span's lines are at `moved_to` or, in place, at its start."""
    number, position = [0], 1
    for span in spans:
        number.extend(range(position, span.start))
        at = span.moved_to or span.start
        number.extend(range(at, at + len(span.lines)))
        position = span.end + 1
    number.extend(range(position, count + 1))
    return number


def renumbered(fields: dict, number: list[int] | None = None) -> dict:
    """`code_fields` of a compile of the patched text, each line replaced by `number[line]`: a
    position that would then end before it starts is shown from its start (as the engine numbers
    a node that starts in changed lines and ends in unchanged ones). The line table's bytes are
    dropped: its encoding differs whenever the numbers do; the positions say what it says.
    Without `number`, the lines are kept."""
    def line(n):
        return n if n is None or number is None else number[n]

    def position(p):
        if len(p) == 3:  # Python 3.10: (start, end, line) of co_lines()
            return p[0], p[1], line(p[2])
        start, end, column, end_column = line(p[0]), line(p[1]), p[2], p[3]
        backwards = start is not None and end is not None and \
            (end < start or (end == start and (end_column or 0) < (column or 0)))
        if backwards:
            end, end_column = start, column
        return start, end, column, end_column

    out = {k: v for k, v in fields.items() if k != "co_linetable"}
    out["co_firstlineno"] = line(fields["co_firstlineno"])
    out["positions"] = [position(p) for p in fields["positions"]]
    out["co_consts"] = tuple(renumbered(c, number) if isinstance(c, dict) else c for c in fields["co_consts"])
    return out


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
def test_an_edit_that_adds_a_line_compiles_as_the_patched_text_with_only_that_line_past_the_end(case, monkeypatch):
    source = _source(case)
    lines = split_lines(source)
    _, result, taken = _rewrite(source, CASES[case][1], True, monkeypatch)
    assert taken == ["compile_functions"]  # only the function was compiled, as when it keeps its line count
    # The span is the inserted line alone, numbered past the end of the file.
    (span,) = result.spans
    assert (span.end, span.line_delta, [line.strip() for line in span.lines]) == (span.start - 1, 1, ["y = y * 3"])
    assert span.moved_to > len(lines)
    patched = patched_lines(lines, result.spans)
    number = shown_numbers(len(lines), result.spans)
    # Every line of the patched text is shown (by linecache) at its number, and every line but the
    # new one keeps its number in the file.
    shown = linecache_lines(lines, result.spans)
    assert [shown[number[p] - 1] for p in range(1, len(patched) + 1)] == patched
    assert [p for p in range(1, len(patched) + 1) if number[p] > len(lines)] == [span.start]
    # The oracle: a compile of the patched text, numbered as shown.
    text = "".join(patched)
    assert code_fields(result.code) != code_fields(compile(text, PATH, "exec", dont_inherit=True))
    assert renumbered(code_fields(result.code)) == \
        renumbered(code_fields(compile(text, PATH, "exec", dont_inherit=True)), number)
    # The same code as the whole module's compile, renumbered the same way (the path a module-level change takes).
    whole = engine_compile.compile_remapped(PATH, lines, [Span(s.start, s.end, s.lines) for s in result.spans], -1)
    assert code_fields(result.code) == code_fields(whole)


TOO_FEW_LINES_ABOVE = textwrap.dedent('''\
    if 1:
        def target(x):
            y = x + 1
            return sys.hexversion and y
    import sys
    ''')


def test_too_few_lines_above_for_the_wrapper_compiles_the_patched_text(monkeypatch):
    """A function on line 2 under an `if`, in a module that imports: the wrapper's import line and
    `if` header take lines 1 and 2, so the function cannot be compiled at its line alone."""
    _, result, taken = _rewrite(TOO_FEW_LINES_ABOVE, "target", False, monkeypatch)
    assert taken == ["compile_functions", "compile_patched"]
    text = "".join(patched_lines(split_lines(TOO_FEW_LINES_ABOVE), result.spans))
    assert code_fields(result.code) == code_fields(compile(text, PATH, "exec", dont_inherit=True))


def test_too_few_lines_above_for_a_function_that_grew_compiles_the_module_numbered_as_shown(monkeypatch):
    """The same function with a line added: the whole module is compiled, its lines numbered as
    `linecache` shows them (the new line past the end of the file, every other at its line)."""
    lines = split_lines(TOO_FEW_LINES_ABOVE)
    _, result, taken = _rewrite(TOO_FEW_LINES_ABOVE, "target", True, monkeypatch)
    assert taken == ["compile_functions", "compile_remapped"]
    (span,) = result.spans
    assert (span.start, span.end, span.moved_to) == (4, 3, 8)
    patched = patched_lines(lines, result.spans)
    number = shown_numbers(len(lines), result.spans)
    assert number == [0, 1, 2, 3, 8, 4, 5]
    assert [linecache_lines(lines, result.spans)[number[p] - 1] for p in range(1, len(patched) + 1)] == patched
    assert renumbered(code_fields(result.code)) == \
        renumbered(code_fields(compile("".join(patched), PATH, "exec", dont_inherit=True)), number)


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
