"""A module-level change compiled with upstream's code for what it leaves alone: the same code as a whole compile.

Each case is a change to a module (the text before and after). The oracle is `compile_remapped`
without upstream's code, which parses, numbers and compiles the whole patched module; with it,
the definitions no change touches are stubbed and their code taken from upstream. Both must give
the same code object, field by field and line table included, on every supported Python. Where
no line count changes, a plain compile of the patched text is a second, independent oracle.
"""

from __future__ import annotations

import difflib
import dis
import textwrap
import types

import pytest

from astpatch import ApplyHunks, Change, Hunk, Rule
from astpatch._base import outcomes as oc
from astpatch._base.lines import Span, split_lines
from astpatch._engine.compile import compile_remapped
from astpatch._engine.rewrite import rewrite

from conftest import code_fields

PATH = "module.py"

BASE = '''\
import functools
import os.path

CONSTANT = 1


def plain(a, b=CONSTANT, *, c: int = 2) -> int:
    """Add."""
    return a + b + c


@functools.lru_cache(maxsize=None)
def decorated(x: "list[int]"):
    return [y * CONSTANT for y in range(x)]


class Base:
    def method(self):
        return 1


class Child(Base):
    """A child."""

    attribute = [1, 2]

    def __init__(self):
        super().__init__()
        self.value = 2
        self.__private = 3

    def method(self):
        return super().method() + self.__private

    @classmethod
    def make(cls):
        return __class__

    @staticmethod
    def twice(x):
        return x * 2

    def through_a_closure(self):
        def inner():
            return super(Child, self).method()
        return inner()

    class Nested:
        def deep(nested):
            return __class__.__name__

        @property
        def name(self):
            return "nested"

        def remember(self):
            self.seen = True


if os.path.sep == "/":
    def separator():
        return "slash"
else:
    def separator():
        return "other"

try:
    import json
except ImportError:
    json = None
else:
    def dumps(value):
        return json.dumps(value)
finally:
    LOADED = True

_counter = 0


def bump():
    def inner():
        global _counter
        _counter += 1
    inner()
    return _counter


async def coroutine():
    return await something()


def generator():
    yield CONSTANT


def closure_maker():
    value = 1

    def closure():
        return value
    return closure


def last():
    return plain(1)
'''


def replace(old: str, new: str, count: int = 1):
    def change(text: str) -> str:
        assert text.count(old) == count, old
        return text.replace(old, new)
    return change


# Each case: the change, and the code objects (paths of names from the module) it must take from upstream.
CASES = {
    "helper-after-module-code": (replace("CONSTANT = 1\n", "CONSTANT = 1\n\n\ndef helper(value):\n    return value\n"),
                                 ["plain", "decorated", "Child", "bump", "last"]),
    "assignment-changed-in-place": (replace("CONSTANT = 1\n", "CONSTANT = 7\n"), ["plain", "Child", "last"]),
    "assignment-grows": (replace("CONSTANT = 1\n", "CONSTANT = (\n    1\n)\n"), ["plain", "Child", "last"]),
    "method-using-super-added": (
        replace("    @classmethod\n",
                "    def added(self):\n        return super().method() * 2\n\n    @classmethod\n"),
        ["plain", "Child.make", "Child.twice", "Child.Nested"]),
    "class-attribute-added": (replace("    attribute = [1, 2]\n", "    attribute = [1, 2]\n    extra = 3\n"),
                              ["Base", "Child.make", "Child.twice", "Child.Nested", "bump"]),
    "nested-class-method-added": (
        replace('            self.seen = True\n', '            self.seen = True\n\n        def other(self):\n'
                '            return super().__init__\n'),
        ["Child.make", "Child.Nested.deep", "decorated"]),
    "statement-added-in-an-else-block": (
        replace('        return "other"\n', '        return "other"\n    SEPARATOR = None\n'),
        ["separator", "dumps", "bump"]),
    "else-branch-changed": (replace('        return "other"\n', '        return "elsewhere"\n'), ["dumps", "bump"]),
    "def-line-renamed": (replace("def last():", "def final():"), ["plain", "generator"]),
    "def-line-new-default": (replace("c: int = 2) -> int:", "c: int = 3) -> int:"), ["decorated", "Child", "last"]),
    "def-line-grows": (replace("def plain(a, b=CONSTANT, *, c: int = 2) -> int:",
                               "def plain(a, b=CONSTANT, *,\n          c: int = 3) -> int:"), ["decorated", "Child"]),
    "decorator-added-above-untouched-def": (replace("def generator():", "@functools.wraps(print)\ndef generator():"),
                                            ["bump", "closure_maker"]),
    "last-line-of-a-function-deleted": (replace("    inner()\n    return _counter\n", "    inner()\n"),
                                        ["coroutine", "Child"]),
    "last-line-of-a-function-dedented": (replace("    inner()\n    return _counter\n", "    inner()\nRESULT = 1\n"),
                                         ["coroutine", "Child"]),
    "global-declared-in-a-new-function": (replace("CONSTANT = 1\n", "CONSTANT = 1\n\n\ndef setter():\n"
                                                  "    global _counter, CONSTANT\n    _counter = 5\n"),
                                          ["bump", "Child"]),
    "class-renamed-and-grown": (replace("class Child(Base):\n", "class Kid(Base):\n    born = 1\n"), ["plain", "bump"]),
    "appended-at-the-end": (lambda text: text + "\n\ndef appended():\n    return last()\n", ["plain", "Child"]),
}


def spans_between(before: str, after: str) -> list[Span]:
    old, new = split_lines(before), split_lines(after)
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    return [Span(i1 + 1, i2, new[j1:j2]) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"]


def find(code: types.CodeType, path: str) -> types.CodeType:
    for name in path.split("."):
        code = next(c for c in code.co_consts if isinstance(c, types.CodeType) and c.co_name == name)
    return code


def both(before: str, after: str) -> tuple[types.CodeType, types.CodeType, types.CodeType]:
    """(with upstream's code, whole, upstream), after checking that the first two are the same."""
    lines = split_lines(before)
    upstream = compile(before, PATH, "exec", dont_inherit=True)
    whole_spans, fast_spans = spans_between(before, after), spans_between(before, after)
    whole = compile_remapped(PATH, lines, whole_spans, -1)
    fast = compile_remapped(PATH, lines, fast_spans, -1, upstream)
    assert code_fields(fast) == code_fields(whole)
    assert [s.to_tuple() for s in fast_spans] == [s.to_tuple() for s in whole_spans]
    if all(s.line_delta == 0 for s in whole_spans):
        assert code_fields(fast) == code_fields(compile(after, PATH, "exec", dont_inherit=True))
    return fast, whole, upstream


@pytest.mark.parametrize("future", [False, True], ids=["plain", "future-annotations"])
@pytest.mark.parametrize("case", list(CASES))
def test_the_skeleton_compile_equals_the_whole_compile(case, future):
    change, reused = CASES[case]
    before = ("from __future__ import annotations\n" if future else "") + BASE
    fast, whole, upstream = both(before, change(before))
    # The untouched definitions were not compiled again: their code is upstream's own object.
    for path in reused:
        assert find(fast, path) is find(upstream, path), path
    namespace: dict = {}
    exec(fast, namespace)
    child = namespace.get("Child") or namespace["Kid"]
    assert (child().method(), child.make() is child, child.Nested().deep()) == (4, True, "Nested")
    if "Child" in namespace:
        assert child().through_a_closure() == 1


def test_the_changed_definitions_are_compiled_not_reused():
    """A function whose `def` line changed, and one whose last line a change removed, get new code."""
    before = BASE
    fast, _, upstream = both(before, CASES["last-line-of-a-function-deleted"][0](before))
    assert find(fast, "bump") is not find(upstream, "bump")
    assert "_counter" not in find(fast, "bump").co_names
    fast, _, upstream = both(before, CASES["def-line-new-default"][0](before))
    assert find(fast, "plain") is not find(upstream, "plain")


def test_a_global_statement_deep_in_an_untouched_function_still_shapes_the_module_code():
    """`global` in any function makes the module's own code store the name with STORE_GLOBAL."""
    before = BASE
    fast, _, upstream = both(before, CASES["helper-after-module-code"][0](before))
    assert find(fast, "bump") is find(upstream, "bump")
    assert {i.opname for i in dis.get_instructions(fast) if i.argval == "_counter"} == {"STORE_GLOBAL"}


def test_a_future_import_added_compiles_everything_again():
    """The future flags are in every code object: upstream's code cannot be used."""
    before = BASE
    fast, _, upstream = both(before, "from __future__ import annotations\n" + before)
    assert find(fast, "plain") is not find(upstream, "plain")


def test_an_upstream_of_other_text_is_not_used():
    """Code objects that are not where the patched text has its definitions are not taken."""
    before = BASE
    after = CASES["helper-after-module-code"][0](before)
    lines = split_lines(before)
    whole = compile_remapped(PATH, lines, spans_between(before, after), -1)
    lower = compile("\n" + before, PATH, "exec", dont_inherit=True)  # every definition one line lower
    named = compile(before, "other.py", "exec", dont_inherit=True)  # every code object says another file
    for other in (lower, named):
        fast = compile_remapped(PATH, lines, spans_between(before, after), -1, other)
        assert code_fields(fast) == code_fields(whole)
        assert find(fast, "Child") is not find(other, "Child")


@pytest.mark.python312  # type parameters are Python 3.12 syntax
def test_generic_definitions_are_compiled_whole():
    before = BASE + textwrap.dedent('''\


        def generic[T](x: T) -> T:
            return x


        class Box[T]:
            def get(self) -> T:
                return super().get()

            def put(self, item: T) -> None:
                self.item = item


        type Alias = list[int]
        ''')
    after = replace("CONSTANT = 1\n", "CONSTANT = 2\nOTHER = 3\n")(before)
    both(before, after)
    both(before, replace("        return super().get()\n", "        return None\n")(before))


def test_a_module_scope_rule_through_the_rewrite_equals_the_rewrite_without_upstream():
    """The real path: a module-level hunk, rewritten with and without the module's own code."""
    hunk = Hunk(before=["CONSTANT = 1"], after=["CONSTANT = 1", "", "", "def helper(value):", "    return value"])
    rule = Rule(id="module-helper", summary="s", upstream="u",
                changes=[Change(module="m", scope="", edit=ApplyHunks(hunks=[hunk]))])
    upstream = compile(BASE, PATH, "exec", dont_inherit=True)
    fast = rewrite("m", PATH, BASE, [rule], {}, upstream=upstream)
    slow = rewrite("m", PATH, BASE, [rule], {})
    assert [o.status for o in fast.outcomes] == [oc.APPLIED]
    assert code_fields(fast.code) == code_fields(slow.code)
    assert find(fast.code, "Child") is find(upstream, "Child")
