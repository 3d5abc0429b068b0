"""Rules that are whole upstream changes: several parts (functions, class bodies, the module's top
level, several modules), applied all together or not at all."""

from __future__ import annotations

import linecache
import sys
import textwrap
import traceback

import pytest

import astpatch
from astpatch import ApplyHunks, Change, Hunk, Rule
from astpatch._base import outcomes as oc
from astpatch._base.lines import linecache_lines, patched_lines, split_lines
from astpatch._engine.rewrite import rewrite

from conftest import code_fields

SOURCE = textwrap.dedent('''\
    import os

    LIMIT = 3


    class Parser:
        def parse(self, text):
            words = text.split()
            return words[:LIMIT]

        def size(self):
            return 1


    def later():
        raise RuntimeError("line 16")
''')

# Upstream's fix: a new module-level helper, and parse() calling it.
HELPER = Change(module="parsing", scope="", edit=ApplyHunks(hunks=[Hunk(
    before=["LIMIT = 3", "", ""],
    after=["LIMIT = 3", "", "", "def _clean(words):", "    return [w.strip(',') for w in words]", "", ""],
)]))
CALL = Change(module="parsing", scope="Parser.parse", edit=ApplyHunks(hunks=[Hunk(
    before=["        words = text.split()"],
    after=["        words = _clean(text.split())"],
)]))
EXPECTED = SOURCE.replace("LIMIT = 3\n\n\n", "LIMIT = 3\n\n\ndef _clean(words):\n    return [w.strip(',') for w in words]\n\n\n") \
    .replace("words = text.split()", "words = _clean(text.split())")


def rule(*changes: Change, id: str = "parsing-clean-words") -> Rule:
    return Rule(id=id, summary="Strip commas from words", upstream="test fixture", changes=list(changes))


def run(source: str, *rules: Rule, module: str = "parsing"):
    result = rewrite(module, f"{module}.py", source, list(rules), {})
    return result, "".join(patched_lines(split_lines(source), result.spans))


def test_a_helper_and_the_function_that_calls_it_apply_together():
    result, text = run(SOURCE, rule(HELPER, CALL))
    assert [o.status for o in result.outcomes] == [oc.APPLIED]
    assert text == EXPECTED  # the oracle: the upstream change made by hand
    namespace: dict = {}
    exec(result.code, namespace)
    assert namespace["Parser"]().parse("a, b, c, d") == ["a", "b", "c"]
    assert namespace["_clean"](["x,"]) == ["x"]


def test_every_line_the_change_does_not_touch_keeps_its_number():
    result, _ = run(SOURCE, rule(HELPER, CALL))
    upstream = compile(SOURCE, "parsing.py", "exec", dont_inherit=True)
    # Code that did not change is exactly upstream's, line numbers included: the class's other
    # method and the function after the inserted helper.
    def find(code, name):
        return next(c for c in code.co_consts if hasattr(c, "co_name") and c.co_name == name)
    assert code_fields(find(result.code, "later")) == code_fields(find(upstream, "later"))
    assert code_fields(find(find(result.code, "Parser"), "size")) == code_fields(find(find(upstream, "Parser"), "size"))
    # The inserted lines are numbered past the end of the file, where the text shown has them.
    shown = linecache_lines(split_lines(SOURCE), result.spans)
    helper = find(result.code, "_clean")
    assert helper.co_firstlineno > len(split_lines(SOURCE))
    assert shown[helper.co_firstlineno - 1] == "def _clean(words):\n"
    parse = find(find(result.code, "Parser"), "parse")
    assert parse.co_firstlineno == 7 and shown[7] == "        words = _clean(text.split())\n"


def test_a_traceback_through_patched_and_kept_code_shows_the_text_that_runs(modules, hook):
    modules("parsing", SOURCE)
    hook(rules=[rule(HELPER, CALL)])
    import parsing

    assert [o.status for o in astpatch.applied()] == [oc.APPLIED]
    try:
        parsing.later()
    except RuntimeError as error:
        frame = traceback.extract_tb(error.__traceback__)[-1]
    assert frame.lineno == 16 and frame.line == 'raise RuntimeError("line 16")'
    try:
        parsing._clean(None)
    except TypeError as error:
        frame = traceback.extract_tb(error.__traceback__)[-1]
    assert frame.line == "return [w.strip(',') for w in words]"
    assert linecache.getline(parsing.__file__, frame.lineno).strip() == frame.line
    assert parsing.Parser().parse("x, y") == ["x", "y"]


def test_when_one_part_does_not_apply_no_part_is_applied(modules, hook):
    broken = Change(module="parsing", scope="Parser.parse", edit=ApplyHunks(hunks=[Hunk(
        before=["        words = text.splitlines()"], after=["        words = _clean(text.splitlines())"])]))
    result, text = run(SOURCE, rule(HELPER, broken))
    (o,) = result.outcomes
    assert o.status == oc.FAILED and result.code is None and text == SOURCE
    assert o.reason.startswith("part 2 (parsing:Parser.parse): the edit does not apply: hunk 1")
    assert o.reason.endswith("; no part of the rule is applied")
    modules("parsing", SOURCE)
    hook(rules=[rule(HELPER, broken)])
    with pytest.warns(astpatch.AstpatchWarning, match="no part of the rule is applied"):
        import parsing
    assert not hasattr(parsing, "_clean")


def test_a_change_already_upstream_in_part_is_reported_and_not_applied():
    result, text = run(SOURCE.replace("LIMIT = 3\n\n\n", EXPECTED.split("class Parser")[0].split("import os\n\n")[1]),
                       rule(HELPER, CALL))
    (o,) = result.outcomes
    assert o.status == oc.PARTLY_FIXED and result.code is None
    assert o.reason.startswith("1 of 2 parts are already upstream (part 1 (parsing:<top level>): all 1 hunks")
    whole, _ = run(EXPECTED, rule(HELPER, CALL))
    assert [o.status for o in whole.outcomes] == [oc.ALREADY_FIXED] and whole.code is None


def test_a_part_that_calls_a_helper_no_part_defines_is_refused():
    result, _ = run(SOURCE, rule(CALL, Change(module="parsing", scope="", edit=ApplyHunks(hunks=[Hunk(
        before=["import os"], after=["import os", "import sys"])]))))
    (o,) = result.outcomes
    assert o.status == oc.FAILED
    assert o.reason == "the patched code reads names the module does not define: _clean"


def test_methods_added_to_a_class_body():
    grow = Change(module="parsing", scope="Parser", edit=ApplyHunks(hunks=[Hunk(
        before=["    def size(self):", "        return 1"],
        after=["    def size(self):", "        return 1", "", "    def empty(self):", "        return not self.size()"],
    )]))
    result, text = run(SOURCE, rule(grow))
    assert [o.status for o in result.outcomes] == [oc.APPLIED]
    namespace: dict = {}
    exec(result.code, namespace)
    assert namespace["Parser"]().empty() is False
    assert text == SOURCE.replace("        return 1\n", "        return 1\n\n    def empty(self):\n"
                                  "        return not self.size()\n")


def test_a_nested_function_that_grows_keeps_every_later_function_at_its_line(modules, hook):
    """Tracebacks and inspect stay right for every function after a nested function whose line count changed."""
    source = textwrap.dedent('''\
        def outer():
            def inner(x):
                return x + 1
            return inner


        def after():
            raise KeyError("line 8")
    ''')
    grow = Change(module="nested", scope="outer.inner", edit=ApplyHunks(hunks=[Hunk(
        before=["        return x + 1"], after=["        x = x * 2", "        return x + 1"])]))
    modules("nested", source)
    hook(rules=[Rule(id="nested-grow", summary="s", upstream="u", changes=[grow])])
    import nested

    assert nested.outer()(1) == 3
    assert nested.after.__code__.co_firstlineno == 7
    assert linecache.getline(nested.__file__, 7) == "def after():\n"
    try:
        nested.after()
    except KeyError as error:
        assert traceback.extract_tb(error.__traceback__)[-1].line == 'raise KeyError("line 8")'


OTHER = 'SETTINGS = {"limit": 3}\n'
CONFIG = Change(module="settings", scope="", edit=ApplyHunks(hunks=[Hunk(
    before=['SETTINGS = {"limit": 3}'], after=['SETTINGS = {"limit": 3, "clean": True}'])]))


@pytest.mark.parametrize("order", [("parsing", "settings"), ("settings", "parsing")])
def test_a_rule_over_two_modules_is_applied_in_both_or_in_neither(modules, hook, order):
    """Whatever module is imported first, the rule is decided for both, from their sources."""
    modules("parsing", SOURCE)
    modules("settings", OTHER)
    hook(rules=[rule(HELPER, CALL, CONFIG)])
    for name in order:
        __import__(name)
    assert sys.modules["settings"].SETTINGS == {"limit": 3, "clean": True}
    assert sys.modules["parsing"].Parser().parse("a,") == ["a"]
    assert sorted((o.module, o.status) for o in astpatch.applied()) == [("parsing", "applied"), ("settings", "applied")]


@pytest.mark.parametrize("order", [("parsing", "settings"), ("settings", "parsing")])
def test_a_rule_over_two_modules_whose_second_part_fails_changes_neither(modules, hook, order):
    modules("parsing", SOURCE)
    modules("settings", OTHER.replace("3", "4"))  # the config hunk no longer matches
    hook(rules=[rule(HELPER, CALL, CONFIG)])
    with pytest.warns(astpatch.AstpatchWarning) as caught:
        for name in order:
            __import__(name)
    assert sys.modules["settings"].SETTINGS == {"limit": 4}
    assert not hasattr(sys.modules["parsing"], "_clean")
    assert {o.status for o in astpatch.applied()} == {"failed"}
    assert all("part 3 (settings:<top level>)" in o.reason for o in astpatch.applied())
    (warning,) = caught  # one warning for the rule, naming both modules
    assert str(warning.message).startswith("astpatch: rule parsing-clean-words was not applied to parsing, settings: ")


RULE_FILE = '''
from astpatch import ApplyHunks, Change, Hunk, Rule

RULE = Rule(
    id="parsing-clean-words", summary="Strip commas from words", upstream="test fixture",
    changes=[
        Change(module="parsing", scope="", edit=ApplyHunks(hunks=[Hunk(
            before=["LIMIT = 3", "", ""],
            after=["LIMIT = 3", "", "", "def _clean(words):", "    return [w.strip(',') for w in words]", "", ""],
        )])),
        Change(module="parsing", scope="Parser.parse", edit=ApplyHunks(hunks=[Hunk(
            before=["        words = text.split()"], after=["        words = _clean(text.split())"],
        )])),
        Change(module="settings", scope="", edit=ApplyHunks(hunks=[Hunk(
            before=['SETTINGS = {"limit": 3}'], after=['SETTINGS = {"limit": 3, "clean": True}'],
        )])),
    ],
)
'''


def test_check_shows_each_part_and_the_first_release_with_the_fix(tmp_path, capsys):
    from astpatch.cli import main

    releases = {"1.0": (SOURCE, OTHER), "1.1": (SOURCE, OTHER.replace("3}", '3, "clean": True}')),
                "2.0": (EXPECTED, OTHER.replace("3}", '3, "clean": True}'))}
    for name, (parsing, settings) in releases.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "parsing.py").write_text(parsing)
        (tmp_path / name / "settings.py").write_text(settings)
    (tmp_path / "rule.py").write_text(RULE_FILE)
    against = [arg for name in releases for arg in ("--against", str(tmp_path / name))]
    status = main(["check", "--rules", str(tmp_path / "rule.py"), "--rule", "parsing-clean-words", "-v", *against])
    out = capsys.readouterr().out
    assert status == 1  # 1.1 is partly fixed: the rule needs its author
    assert out.splitlines()[1].split() == ["parsing-clean-words", "applied", "partly-fixed", "already-fixed"]
    assert ("parsing-clean-words @ 1.1: partly-fixed: 1 of 3 parts are already upstream (part 3 "
            "(settings:<top level>): all 1 hunks of the diff are already in the module)") in out
    assert "  settings:<top level>: already-fixed: all 1 hunks of the diff are already in the module" in out
    assert "  parsing:Parser.parse: applied: applied 1 hunks" in out
    assert "parsing-clean-words: already fixed upstream from 2.0 on" in out


WARM = '''
import json, sys
import astpatch
astpatch.install(rules=[{rule!r}], cache_dir={cache!r})
import parsing, settings
print(json.dumps({{"outcomes": sorted([o.module, o.status, o.from_cache] for o in astpatch.applied()),
                  "libcst": "libcst" in sys.modules, "clean": settings.SETTINGS.get("clean"),
                  "words": parsing.Parser().parse("a, b")}}))
'''


def test_a_two_module_rule_is_cached_and_its_key_covers_both_modules(tmp_path):
    """A warm process imports no libcst; editing the other module's source is seen by this module's entry."""
    from scenario import Scenario

    scene = Scenario(tmp_path, source=None, rule_file=RULE_FILE)
    scene.write("parsing", SOURCE)
    scene.write("settings", OTHER)
    program = WARM.format(rule=str(scene.rule), cache=str(scene.cache))
    cold = scene.python(program).json()
    assert cold["outcomes"] == [["parsing", "applied", False], ["settings", "applied", False]]
    assert cold["clean"] is True and cold["words"] == ["a", "b"]
    # Diff hunks are text edits, on a function too: the cold rewrite imports no libcst either.
    assert cold["libcst"] is False
    warm = scene.python(program).json()
    assert warm["outcomes"] == [["parsing", "applied", True], ["settings", "applied", True]]
    assert warm["libcst"] is False and warm["words"] == ["a", "b"]
    # settings.py no longer takes its part: both modules' entries are keyed by it, so both are
    # decided again, and neither is changed.
    scene.write("settings", OTHER.replace("3", "4"))
    changed = scene.python(program).json()
    assert changed["outcomes"] == [["parsing", "failed", False], ["settings", "failed", False]]
    assert changed["clean"] is None and changed["words"] == ["a,", "b"]


def test_the_line_diff_gives_spans_that_rebuild_the_new_text():
    """Oracle: replaying the spans on the old lines gives the new lines, for many random edits."""
    import random

    from astpatch._engine.apply import diff_spans

    chooser = random.Random(1)
    for _ in range(2000):
        old = [chooser.choice("abcdefg") + "\n" for _ in range(chooser.randint(0, 30))]
        new = list(old)
        for _ in range(chooser.randint(0, 4)):
            k = chooser.randint(0, len(new))
            if chooser.random() < 0.4:
                new.insert(k, chooser.choice("abcdxyz") + "\n")
            elif new:
                new[min(k, len(new) - 1):min(k, len(new) - 1) + 1] = [] if chooser.random() < 0.5 else ["z\n"]
        spans = diff_spans(old, new, 1)
        assert patched_lines(old, spans) == new
        assert all(a.end < b.start for a, b in zip(spans, spans[1:]))
        assert sum(len(s.lines) + (s.end - s.start + 1) for s in spans) <= 2 * (len(old) + len(new))


def test_a_method_edit_that_calls_an_undefined_helper_is_refused_even_beside_globals():
    """The names check covers edits of single functions too, and a module that reads globals()."""
    source = "def snapshot():\n    return dict(globals())\n\n\nclass A:\n    def f(self):\n        return 1\n"
    calls = Change(module="m", scope="A.f", edit=ApplyHunks(hunks=[Hunk(before=["        return 1"],
                                                                           after=["        return helper()"])]))
    (o,) = run(source, rule(calls), module="m")[0].outcomes
    assert (o.status, o.reason) == (oc.FAILED, "the patched code reads names the module does not define: helper")
    defined = source + "\n\ndef helper():\n    return 2\n"
    result, _ = run(defined, rule(calls), module="m")
    assert [o.status for o in result.outcomes] == [oc.APPLIED]


@pytest.mark.parametrize("old, new, check", [
    ("    def old(self):", "    def old(self, extra=5):", "C().old() == 1 and C.old.__defaults__ == (5,)"),
    ("    def old(self):", "    @staticmethod\n    def old():", "C.old() == 1"),
])
def test_an_edit_of_the_def_line_itself_runs(old, new, check):
    """A rename, a new parameter with a default, a new decorator: what the patched text says runs,
    whether the module is compiled from the code objects (the import) or parsed (check)."""
    source = "class C:\n    def old(self):\n        return 1\n"
    hunk = Hunk(before=[old], after=new.split("\n"))
    edit_rule = Rule(id="def-line", summary="s", upstream="u", module="m", target="C.old", edit=ApplyHunks(hunks=[hunk]))
    for upstream in (None, compile(source, "m.py", "exec", dont_inherit=True)):
        result = rewrite("m", "m.py", source, [edit_rule], {}, upstream=upstream)
        assert [o.status for o in result.outcomes] == [oc.APPLIED], result.outcomes
        namespace: dict = {}
        exec(result.code, namespace)
        assert eval(check, namespace)


def test_a_rename_is_a_change_of_the_scope_that_binds_the_name():
    """An edit of function C.old whose result is named otherwise is not that function any more:
    failed, saying so. The same hunk on the class body (the scope that binds the name, where
    `new --from-diff` puts it) renames the method, and what the patched text says runs."""
    source = "class C:\n    def old(self):\n        return 1\n"
    hunk = Hunk(before=["    def old(self):"], after=["    def new(self):"])
    on_function = Rule(id="rename", summary="s", upstream="u", module="m", target="C.old", edit=ApplyHunks(hunks=[hunk]))
    on_class = Rule(id="rename", summary="s", upstream="u", changes=[Change(module="m", scope="C",
                                                                           edit=ApplyHunks(hunks=[hunk]))])
    for upstream in (None, compile(source, "m.py", "exec", dont_inherit=True)):
        (refused,) = rewrite("m", "m.py", source, [on_function], {}, upstream=upstream).outcomes
        assert refused.status == oc.FAILED and "renamed C.old to new" in refused.reason, refused
        result = rewrite("m", "m.py", source, [on_class], {}, upstream=upstream)
        assert [o.status for o in result.outcomes] == [oc.APPLIED], result.outcomes
        namespace: dict = {}
        exec(result.code, namespace)
        assert namespace["C"]().new() == 1 and not hasattr(namespace["C"], "old")


def test_a_rule_over_two_modules_one_imported_before_install_is_applied_in_neither(modules, hook):
    """settings was imported before install(), without its part: parsing does not take its own."""
    modules("parsing", SOURCE)
    modules("settings", OTHER)
    import settings  # noqa: F401  (before install)

    with pytest.warns(astpatch.AstpatchWarning, match="settings was imported before astpatch.install()"):
        hook(rules=[rule(HELPER, CALL, CONFIG)])
    import parsing

    assert not hasattr(parsing, "_clean") and sys.modules["settings"].SETTINGS == {"limit": 3}
    (late, here) = astpatch.applied()
    assert (late.module, late.status, here.module, here.status) == ("settings", "failed", "parsing", "failed")
    assert here.reason == late.reason  # the reason it failed there is the reason here


class CountedParams(astpatch.Edit):
    """An edit kind that counts its params() calls, and gives no dict when told to."""

    kind = "counted"

    def __init__(self, broken: bool = False) -> None:
        self.calls = 0
        self.broken = broken

    def params(self):
        self.calls += 1
        return ["not", "a", "dict"] if self.broken else {"n": 1}

    def apply(self, target):
        raise AssertionError("not applied here")


def test_params_is_validated_once_per_declaration_in_either_form():
    """A one-function Rule and a Rule of Changes each call the edit's params() once to validate it,
    and a kind that gives no dict is named in the words of the form it was declared in."""
    one = CountedParams()
    declared = Rule(id="one-function", summary="s", upstream="u", module="m", target="f", edit=one)
    assert one.calls == 1 and (declared.module, declared.target) == ("m", "f") and declared.edit is one
    part = CountedParams()
    declared = rule(Change(module="m", scope="f", edit=part))
    assert part.calls == 1 and (declared.module, declared.target) == ("m", "f") and declared.edit is part

    problem = "the edit kind CountedParams's params() returned list, not a dict of its parameters as plain data"
    with pytest.raises(astpatch.RuleError) as raised:
        Rule(id="one-function", summary="s", upstream="u", module="m", target="f", edit=CountedParams(broken=True))
    assert str(raised.value) == f"rule 'one-function': {problem}"
    with pytest.raises(astpatch.RuleError) as raised:
        Change(module="m", scope="f", edit=CountedParams(broken=True))
    assert str(raised.value) == f"the change of 'm' at 'f': {problem}"
