"""Line numbers that tools can use, when an edit changes a function's line count.

The lines the edit did not change run at their lines in the file, so a breakpoint set on one
(`bdb`, the machinery of `pdb`, over `sys.settrace`) is hit there and a traceback through one
names its line in the file; only the lines the edit added, or replaced by a different number of
lines, run past the end of the file, where `linecache` shows them below their note. The oracle
for the text: a plain compile of the patched text, instruction by instruction.
"""

from __future__ import annotations

import bdb
import difflib
import importlib
import inspect
import linecache
import sys
import traceback
import types

import pytest

import astpatch
from astpatch import ApplyHunks, Hunk, Rule
from astpatch._base import outcomes as oc
from astpatch._base.lines import linecache_lines, patched_lines, split_lines
from astpatch._engine.rewrite import rewrite

SOURCE = '''\
import math


def scaled(f):
    return f


class Meter:
    @scaled
    def read(self, x):
        total = x * 2
        total = total + 1
        return math.sqrt(total) / x

    def other(self):
        return 16


def outer(x):
    def inner(y):
        total = y * 2
        total = total + 1
        return math.sqrt(total) / y
    return inner(x)


def last():
    return 28
'''
FILE = split_lines(SOURCE)
GUARD = "raise ValueError('negative')"
# The lines of each target's body that the guard leaves alone (it inserts two lines above them).
UNCHANGED = {"Meter.read": [11, 12, 13], "outer.inner": [21, 22, 23]}


def guard(target: str) -> Rule:
    """A rule that inserts two lines (a guard) before the first statement of `target`'s body."""
    variable = "x" if target == "Meter.read" else "y"
    first = f"        total = {variable} * 2"
    guarded = [f"        if {variable} < 0:", f"            {GUARD}", first]
    edit = ApplyHunks(hunks=[Hunk(before=[first], after=guarded)])
    return Rule(id=f"guard-{target.rsplit('.', 1)[-1]}", summary="Refuse negative values", upstream="test fixture",
                module="meter", target=target, edit=edit)


def call(module: types.ModuleType, target: str, value: float) -> float:
    return module.Meter().read(value) if target == "Meter.read" else module.outer(value)


class Breakpoints(bdb.Bdb):
    """A debugger that records where its breakpoints were hit, and runs on."""

    def __init__(self) -> None:
        super().__init__()
        self.hits: list[tuple[int, str]] = []

    def user_line(self, frame: types.FrameType) -> None:
        if self.get_breaks(self.canonic(frame.f_code.co_filename), frame.f_lineno):
            self.hits.append((frame.f_lineno, linecache.getline(frame.f_code.co_filename, frame.f_lineno)))
        self.set_continue()


def imported(modules, hook, target: str) -> types.ModuleType:
    """The module imported through the hook with the rule on `target`, twice: the second import
    is a hit of the cache, and what follows checks the code that one gave."""
    modules("meter", SOURCE)
    hook(rules=[guard(target)])
    importlib.import_module("meter")
    assert [o.status for o in astpatch.applied()] == [oc.APPLIED]
    del sys.modules["meter"]
    meter = importlib.import_module("meter")
    assert [o.from_cache for o in astpatch.applied()][-1] is True
    return meter


# Meter.read is compiled on its own (a method); outer.inner, a nested function, with the whole module.
@pytest.mark.parametrize("target", sorted(UNCHANGED))
def test_a_breakpoint_on_an_unchanged_line_is_hit_at_its_line_in_the_file(modules, hook, target):
    meter = imported(modules, hook, target)
    debugger = Breakpoints()
    for line in UNCHANGED[target]:
        assert debugger.set_break(meter.__file__, line) is None  # (a message when the line does not exist)
    debugger.runcall(call, meter, target, 2.0)
    assert debugger.hits == [(line, FILE[line - 1]) for line in UNCHANGED[target]]


@pytest.mark.parametrize("target", sorted(UNCHANGED))
def test_every_line_of_the_patched_function_runs_where_linecache_shows_its_text(modules, hook, target):
    """`sys.settrace` sees the unchanged lines at their lines in the file and the new ones past its end."""
    meter = imported(modules, hook, target)
    name = target.rsplit(".", 1)[-1]
    seen: list[int] = []

    def tracer(frame, event, arg):
        if frame.f_code.co_name != name:
            return None
        if event == "line":
            seen.append(frame.f_lineno)
        return tracer

    sys.settrace(tracer)
    try:
        call(meter, target, 2.0)
    finally:
        sys.settrace(None)
    shown = [linecache.getline(meter.__file__, line).strip() for line in seen]
    assert shown == [f"if {'x' if name == 'read' else 'y'} < 0:", *(FILE[n - 1].strip() for n in UNCHANGED[target])]
    assert seen[1:] == UNCHANGED[target] and seen[0] > len(FILE)
    assert linecache.getline(meter.__file__, seen[0] - 1) == \
        f"# astpatch: inserted after line {UNCHANGED[target][0] - 1} of this file\n"


@pytest.mark.parametrize("target", sorted(UNCHANGED))
def test_a_traceback_through_an_inserted_line_and_an_unchanged_line_after_it_shows_their_text(modules, hook, target):
    meter = imported(modules, hook, target)
    frames = {}
    for value, error in ((-1.0, ValueError), (0.0, ZeroDivisionError)):
        with pytest.raises(error) as caught:
            call(meter, target, value)
        frames[error] = traceback.extract_tb(caught.value.__traceback__)[-1]
        assert frames[error].filename == meter.__file__
    inserted, unchanged = frames[ValueError], frames[ZeroDivisionError]
    assert inserted.line == GUARD and inserted.lineno > len(FILE)
    assert linecache.getline(meter.__file__, inserted.lineno).strip() == GUARD
    assert unchanged.lineno == UNCHANGED[target][-1]
    assert unchanged.line == FILE[unchanged.lineno - 1].strip()
    text = "".join(traceback.format_exception(ZeroDivisionError, caught.value, caught.value.__traceback__))
    assert f'line {unchanged.lineno}, in {target.rsplit(".", 1)[-1]}\n    {unchanged.line}\n' in text


def test_inspect_shows_the_function_as_the_file_numbers_it(modules, hook):
    """The documented choice: the function's first line is its line in the file, and
    `inspect.getsource` reads its lines from there: the file's text of the function (its new lines
    are past the end of the file, below their note)."""
    meter = imported(modules, hook, "Meter.read")
    source, start = inspect.getsourcelines(meter.Meter.read)
    assert (start, source) == (9, FILE[8:13])
    assert meter.Meter.read.__code__.co_firstlineno == 9
    with pytest.raises(ValueError, match="negative"):  # what runs is the patched function
        meter.Meter().read(-1.0)


# The oracle's module: SOURCE with each target's `return` spread over two lines.
SPREAD = SOURCE.replace("return math.sqrt(total) / x", "return math.sqrt(\n            total) / x") \
    .replace("return math.sqrt(total) / y", "return math.sqrt(\n            total) / y")
# Edits of the target's body, as (old lines, new lines), each changing the line count; `{v}` is its
# parameter. They insert, replace a line by more lines, remove a line, change two runs at once,
# grow a call from an unchanged line into new ones, and start a statement in new lines that ends
# in an unchanged one.
EDITS = {
    "insert": (["total = {v} * 2"], ["if {v} < 0:", "    raise ValueError('negative')", "total = {v} * 2"]),
    "replace-by-more": (["total = total + 1"], ["total = total", "total += 1"]),
    "remove": (["total = total + 1"], []),
    "two-runs": (["total = {v} * 2", "total = total + 1"],
                 ["assert {v} is not None", "total = {v} * 2", "total = total", "total += 1"]),
    "grow-a-call": (["return math.sqrt(", "    total) / {v}"], ["return math.sqrt(", "    total,", ") / {v}"]),
    "end-in-an-unchanged-line": (["return math.sqrt(", "    total) / {v}"],
                                 ["return 1 * \\", "    math.sqrt(", "    total) / {v}"]),
}


class Replace(astpatch.Edit):
    """Replaces a run of lines of the target's body (given without their indentation)."""

    kind = "test-replace-lines"

    def __init__(self, old: list[str], new: list[str]) -> None:
        self.old, self.new = old, new

    def params(self):
        return {"old": self.old, "new": self.new}

    def apply(self, target):
        lines = target.code.splitlines(keepends=True)
        variable = "x" if "def read" in target.code else "y"
        body = [f"{' ' * 8}{line.format(v=variable)}\n" for line in self.old]
        at = next(i for i in range(len(lines)) if lines[i : i + len(body)] == body)
        new = [f"{' ' * 8}{line.format(v=variable)}\n" for line in self.new]
        return astpatch.EditResult.applied_code("".join(lines[:at] + new + lines[at + len(body) :]))


def instruction_lines(code: types.CodeType) -> list[tuple[str, int, int | None]]:
    """(code object, offset, line) of every instruction of `code` and of the code objects in it."""
    found = [(code.co_name, offset, line) for start, end, line in code.co_lines() for offset in range(start, end, 2)]
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            found.extend(instruction_lines(const))
    return found


@pytest.mark.parametrize("target", sorted(UNCHANGED))
@pytest.mark.parametrize("edit", sorted(EDITS))
@pytest.mark.parametrize("with_upstream", [True, False], ids=["from-upstream-code", "from-source"])
def test_each_instruction_runs_at_its_line_in_the_file_or_where_its_new_text_is_shown(target, edit, with_upstream):
    """Against a plain compile of the patched text: the same instructions; each one from a line
    the edit did not change (as `difflib` matches the file and the patched text) runs at that
    line of the file, each one from a new line past the end of the file, where `linecache` shows
    that line's text."""
    rule = Rule(id="replace", summary="s", upstream="u", module="meter", target=target, edit=Replace(*EDITS[edit]))
    upstream = compile(SPREAD, "meter.py", "exec", dont_inherit=True) if with_upstream else None
    result = rewrite("meter", "meter.py", SPREAD, [rule], {}, upstream=upstream)
    assert [o.status for o in result.outcomes] == [oc.APPLIED]
    file = split_lines(SPREAD)
    patched = patched_lines(file, result.spans)
    assert len(patched) != len(file)
    oracle = compile("".join(patched), "meter.py", "exec", dont_inherit=True)
    got, want = instruction_lines(result.code), instruction_lines(oracle)
    assert [(name, offset) for name, offset, _ in got] == [(name, offset) for name, offset, _ in want]
    matcher = difflib.SequenceMatcher(None, file, patched, autojunk=False)
    kept = {j + k + 1: i + k + 1 for i, j, n in matcher.get_matching_blocks() for k in range(n)}  # patched -> file
    shown = linecache_lines(file, result.spans)
    new = 0
    for (_, _, line), (_, _, origin) in zip(got, want):
        if not origin:  # no line (None; 0 for a module's first instruction on Python 3.11)
            assert line == origin
        elif origin in kept:
            assert line == kept[origin]
        else:
            assert line > len(file) and shown[line - 1] == patched[origin - 1]
            new += 1
    assert new or edit == "remove"
