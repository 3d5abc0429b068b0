"""Targets beyond one plain definition: a property's accessors, a `typing.overload`ed function's
implementation, and a name defined more than once at one scope level (the branches of an `if`,
a `try`/`except ImportError` fallback), which a rule edits all or nothing.

Each case is rewritten twice, from the parsed module and from its code objects (the locator an
import uses from Python 3.11), which must agree; the code must run as the patched text does; and
the module is imported through astpatch to see which definition runs.
"""

from __future__ import annotations

import importlib

import pytest

import astpatch
from astpatch._base import outcomes as oc
from astpatch._base.lines import patched_lines, split_lines
from astpatch._engine.rewrite import rewrite
from astpatch._model.edit import Edit, EditResult

PROPERTIES = '''\
CALLS = []


class Box:
    def __init__(self):
        self._size = 0

    @property
    def size(self):
        return self._size

    @size.setter
    def size(self, value):
        self._size = value

    @size.deleter
    def size(self):
        self._size = None

    def grow(self):
        self.size = self.size + 1
        return self
'''

OVERLOADS = '''\
import typing
from typing import overload

CALLS = []


@overload
def scale(x: int) -> int: ...
@typing.overload
def scale(x: str) -> str: ...
def scale(x):
    return x * 2


class Ruler:
    @overload
    def fit(self, x: int) -> int: ...

    @overload
    def fit(self, x: str) -> str: ...

    def fit(self, x):
        return x
'''

CONDITIONAL = '''\
import sys

CALLS = []

if sys.version_info >= (3, 0):
    def pick(x):
        return x + 1
else:
    def pick(x):
        return x - 1

try:
    import json as _fast

    def load(text):
        return _fast.loads(text)
except ImportError:
    def load(text):
        return eval(text)
'''


class Tag(Edit):
    """Records each call of the target in the module's CALLS: which definition runs is then seen.

    A definition holding `# untaggable` does not match; one already tagged is already fixed.
    """

    kind = "tag"

    def __init__(self, label: str) -> None:
        self.label = label

    def params(self) -> dict:
        return {"label": self.label}

    def apply(self, target):
        lines = target.code.splitlines(True)
        call = f"CALLS.append({self.label!r})"
        if any(call in line for line in lines):
            return EditResult.already_fixed(f"{self.label} already tagged")
        if any("# untaggable" in line for line in lines):
            return EditResult.no_match("marked untaggable")
        at = next(i for i, line in enumerate(lines) if line.lstrip().startswith("def "))
        indent = lines[at][: len(lines[at]) - len(lines[at].lstrip())] + "    "
        lines.insert(at + 1, f"{indent}{call}\n")
        return EditResult.applied_code("".join(lines), f"tagged {self.label}")


def tag_rule(module: str, target: str, label: str = "edited") -> astpatch.Rule:
    return astpatch.Rule(id=f"tag-{label}", summary="tag a definition", upstream="a test", module=module,
                         target=target, edit=Tag(label))


def tagged(source: str, old: str, label: str = "edited") -> str:
    """`source` with the tag inserted after `old`, which starts with the one `def` line to tag
    (the expected patched text)."""
    assert source.count(old) == 1, old
    head, newline, tail = old.partition("\n")
    indent = head[: len(head) - len(head.lstrip())] + "    "
    return source.replace(old, f"{head}\n{indent}CALLS.append({label!r}){newline}{tail}")


def rewritten(module: str, source: str, rules: list) -> tuple[list[oc.Outcome], str, dict | None]:
    """The outcomes, the patched text and the namespace the patched code runs in (None when nothing
    was applied), after checking that both locators give the same answer and that the code runs as
    the patched text compiled plainly does."""
    path = f"{module}.py"
    from_tree = rewrite(module, path, source, rules, {})
    from_code = rewrite(module, path, source, rules, {},
                        upstream=compile(source, path, "exec", dont_inherit=True))
    assert [(o.status, o.reason) for o in from_tree.outcomes] == [(o.status, o.reason) for o in from_code.outcomes]
    assert [(s.start, s.end, s.lines) for s in from_tree.spans] == [(s.start, s.end, s.lines) for s in from_code.spans]
    text = "".join(patched_lines(split_lines(source), from_tree.spans))
    if from_tree.code is None:
        assert from_code.code is None and text == source
        return from_tree.outcomes, text, None
    namespaces = []
    for code in (from_tree.code, from_code.code, compile(text, path, "exec", dont_inherit=True)):
        namespace = {"__name__": module}
        exec(code, namespace)
        namespaces.append(namespace)
    return from_tree.outcomes, text, namespaces  # type: ignore[return-value]


def exercise_box(namespace: dict) -> tuple[list, list[str]]:
    """Get, set and delete Box.size; the values seen and the tags recorded, in order."""
    box = namespace["Box"]()
    seen = [box.size]
    box.size = 5
    seen.append(box._size)
    seen.append(box.grow().size)
    del box.size
    seen.append(box._size)
    return seen, namespace["CALLS"]


@pytest.mark.parametrize("target, old, calls", [
    ("Box.size", "    def size(self):\n        return", ["get", "get", "get"]),
    ("Box.size.getter", "    def size(self):\n        return", ["get", "get", "get"]),
    ("Box.size.setter", "    def size(self, value):", ["set", "set"]),
    ("Box.size.deleter", "    def size(self):\n        self._size = None", ["del"]),
])
def test_a_property_accessor_is_targeted_by_its_role(target, old, calls):
    """`Class.prop` (or `.getter`) is the getter, `.setter` and `.deleter` the definitions decorated
    `@prop.setter` and `@prop.deleter`; the other accessors are left as they are."""
    label = calls[0]
    expected = tagged(PROPERTIES, old, label)
    (o,), text, namespaces = rewritten("props", PROPERTIES, [tag_rule("props", target, label)])
    assert (o.status, o.reason) == (oc.APPLIED, f"tagged {label}")
    assert text == expected
    for namespace in namespaces:
        assert exercise_box(namespace) == ([0, 5, 6, None], calls)


def test_a_property_without_such_an_accessor_is_named():
    source = PROPERTIES.replace("    @size.deleter\n    def size(self):\n        self._size = None\n\n", "")
    (o,), text, namespace = rewritten("props", source, [tag_rule("props", "Box.size.deleter")])
    assert (o.status, o.reason) == (oc.TARGET_MISSING, "Box.size has no deleter: no definition of size in Box "
                                                       "is decorated @size.deleter")
    assert text == source and namespace is None


def test_a_nested_function_named_like_an_accessor_is_still_the_nested_function():
    """`f.setter` names a function `setter` defined in `f` when there is one: as before."""
    source = "CALLS = []\n\n\ndef f():\n    def setter():\n        return 1\n    return setter()\n"
    (o,), text, namespaces = rewritten("nested", source, [tag_rule("nested", "f.setter")])
    assert o.status == oc.APPLIED and text == tagged(source, "    def setter():")
    assert namespaces[0]["f"]() == 1 and namespaces[0]["CALLS"] == ["edited"]


@pytest.mark.parametrize("target, old", [
    ("scale", "def scale(x):"),
    ("Ruler.fit", "    def fit(self, x):"),
])
def test_an_overloaded_function_is_its_implementation(target, old):
    """The one definition not decorated `@overload` (or `@typing.overload`) is edited; the stubs,
    which never run, are left as they are."""
    (o,), text, namespaces = rewritten("shapes", OVERLOADS, [tag_rule("shapes", target)])
    assert (o.status, o.reason) == (oc.APPLIED, "tagged edited")
    assert text == tagged(OVERLOADS, old)
    for namespace in namespaces:
        assert (namespace["scale"](2), namespace["Ruler"]().fit("a"), namespace["CALLS"]) == (4, "a", ["edited"])


def test_overload_stubs_without_an_implementation_are_not_a_target():
    source = OVERLOADS.replace("def scale(x):\n    return x * 2\n", "")
    (o,), text, _ = rewritten("shapes", source, [tag_rule("shapes", "scale")])
    assert (o.status, o.reason) == (oc.TARGET_MISSING, "scale is defined 2 times, each an @overload stub (lines 7, 9): "
                                                       "there is no implementation to edit")
    assert text == source


@pytest.mark.parametrize("target, olds, result", [
    ("pick", ["    def pick(x):\n        return x + 1", "    def pick(x):\n        return x - 1"], 3),
    ("load", ["    def load(text):\n        return _fast", "    def load(text):\n        return eval"], [1]),
])
def test_a_name_defined_in_each_branch_is_edited_in_every_definition(target, olds, result):
    """Which branch runs is decided when the module runs, so the rule edits each definition, and the
    outcome says which lines it edited."""
    expected = CONDITIONAL
    for old in olds:
        expected = tagged(expected, old)
    (o,), text, namespaces = rewritten("cond", CONDITIONAL, [tag_rule("cond", target)])
    lines = [n + 1 for n, line in enumerate(CONDITIONAL.splitlines()) if line.strip().startswith(f"def {target}(")]
    assert len(lines) == 2
    assert (o.status, o.reason) == (oc.APPLIED, f"{target} is defined 2 times (lines {lines[0]}, {lines[1]}): "
                                                f"edited every definition: tagged edited")
    assert text == expected
    for namespace in namespaces:
        assert (namespace[target](2 if target == "pick" else "[1]"), namespace["CALLS"]) == (result, ["edited"])


def test_every_definition_takes_the_edit_or_none_does():
    """A definition the edit does not match fails the rule, named by its line, and the other
    definitions (the one that runs included) are left as upstream wrote them."""
    source = CONDITIONAL.replace("        return x - 1\n", "        return x - 1  # untaggable\n")
    (o,), text, namespaces = rewritten("cond", source, [tag_rule("cond", "pick")])
    assert (o.status, o.reason) == (oc.FAILED, "pick is defined 2 times (lines 6, 9) and the rule edits every "
                                               "definition or none: the one at line 9 does not take the edit: "
                                               "the edit does not apply: marked untaggable")
    assert text == source and namespaces is None


def test_definitions_already_fixed_and_others_edited():
    """A branch upstream already fixed counts as taking the edit; the outcome says which was edited."""
    source = CONDITIONAL.replace("    def pick(x):\n        return x - 1",
                                 "    def pick(x):\n        CALLS.append('edited')\n        return x - 1")
    (o,), text, namespaces = rewritten("cond", source, [tag_rule("cond", "pick")])
    assert (o.status, o.reason) == (oc.APPLIED, "pick is defined 2 times (lines 6, 9): edited line 6: tagged edited; "
                                                "already fixed at line 9: edited already tagged")
    assert text == tagged(source, "    def pick(x):\n        return x + 1")
    assert (namespaces[0]["pick"](1), namespaces[0]["CALLS"]) == (2, ["edited"])
    (o,), text, _ = rewritten("cond", text, [tag_rule("cond", "pick")])
    assert (o.status, o.reason) == (oc.ALREADY_FIXED, "pick is defined 2 times (lines 6, 10): every definition is "
                                                      "already fixed: edited already tagged")


def test_a_rule_withdrawn_from_every_definition_leaves_the_other_rules_applied():
    """A rule on every definition withdrawn whole leaves the module's other rules applied."""
    source = CONDITIONAL.replace("        return x - 1\n", "        return x - 1  # untaggable\n")
    rules = [tag_rule("cond", "pick", "pick"), tag_rule("cond", "load", "load")]
    (pick, load), text, namespaces = rewritten("cond", source, rules)
    assert (pick.status, load.status) == (oc.FAILED, oc.APPLIED)
    assert text.count("CALLS.append('load')") == 2 and "CALLS.append('pick')" not in text
    assert namespaces[0]["pick"](1) == 2 and namespaces[0]["CALLS"] == []


SOURCES = {"props": PROPERTIES, "shapes": OVERLOADS, "cond": CONDITIONAL}


@pytest.mark.parametrize("module, target, use, calls", [
    ("props", "Box.size.setter", "b = m.Box(); b.size = 3; print(b.size, m.CALLS)", "3 ['edited']"),
    ("shapes", "scale", "print(m.scale(4), m.CALLS)", "8 ['edited']"),
    ("cond", "load", "print(m.load('[2]'), m.pick(1), m.CALLS)", "[2] 2 ['edited']"),
])
def test_an_import_runs_the_edited_definition(modules, hook, module, target, use, calls, capsys):
    """Through the import system, on this interpreter (from 3.11, the code-object locator first)."""
    modules(module, SOURCES[module])
    hook(rules=[tag_rule(module, target)])
    m = importlib.import_module(module)
    exec(use, {"m": m})
    assert capsys.readouterr().out.strip() == calls
    (o,) = [o for o in astpatch.applied() if o.module == module]
    assert o.status == oc.APPLIED, o.reason


@pytest.mark.parametrize("module, target, use, calls", [
    ("props", "Box.size.setter", "b = m.Box(); b.size = 3; print(b.size, m.CALLS)", "3 ['edited']"),
    ("props", "Box.size", "b = m.Box(); print(b.size, m.CALLS)", "0 ['edited']"),
    ("shapes", "scale", "print(m.scale(4), m.CALLS)", "8 ['edited']"),
])
def test_a_module_imported_before_install_gets_the_edited_definition_live(modules, hook, module, target, use, calls,
                                                                          capsys):
    """Live patching reaches a property's accessors (`fget`, `fset`) and an overload's implementation."""
    modules(module, SOURCES[module])
    m = importlib.import_module(module)
    hook(rules=[tag_rule(module, target)])
    exec(use, {"m": m})
    assert capsys.readouterr().out.strip() == calls
    (o,) = [o for o in astpatch.applied() if o.module == module]
    assert o.status == oc.APPLIED and o.reason.endswith("applied to the live function because "
                                                        f"{module} was imported before astpatch.install()"), o.reason
