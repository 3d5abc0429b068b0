"""Cache keys that carry the applied rules (astpatch._model.cache_keys, astpatch._hook.keys), on a
fake package: the KeyWithRules edit as before/after pairs, when the rule set puts a key rule in
force, and the key a memoised key function returns in fresh interpreters.

The fake package `fakepkg` keys something by its own source, as torch's `torch_key()` does: its
`source_key()` is memoised by a decorator with a `clear()`. The expected keys are computed here
from the rules' fingerprints, as `astpatch.key_with_rules` documents them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import astpatch
from astpatch._model.entrypoints import Plugin
from astpatch._model.ruleset import RuleSet, load_rules
from astpatch.testing import assert_already_fixed, assert_edit, assert_no_match, edit_module

from scenario import Scenario

EDIT = astpatch.KeyWithRules(package="pkg")
WRAP = '__import__("astpatch").key_with_rules'

# ---------------------------------------------------------------------------------------------
# The edit


def test_only_the_functions_own_returns_pass_through_the_key():
    assert_edit(
        '''
        def key(flag):
            def helper():
                return 1

            async def later():
                return 2

            class Inner:
                def method(self):
                    return 3

            square = lambda x: x * x
            if flag:
                return helper() + square(2)
            return Inner().method()
        ''',
        f'''
        def key(flag):
            def helper():
                return 1

            async def later():
                return 2

            class Inner:
                def method(self):
                    return 3

            square = lambda x: x * x
            if flag:
                return {WRAP}(helper() + square(2), "pkg")
            return {WRAP}(Inner().method(), "pkg")
        ''',
        EDIT, target="key")


def test_a_returned_tuple_is_passed_as_one_value():
    assert_edit(
        '''
        def key():
            return version, digest
        ''',
        f'''
        def key():
            return {WRAP}((version, digest), "pkg")
        ''',
        EDIT)


def test_a_value_over_several_lines_keeps_every_line_in_place():
    before = '''
        def key(parts):
            return b"|".join(
                part.encode()  # each part
                for part in parts
            )
        '''
    assert_edit(before, f'''
        def key(parts):
            return {WRAP}(b"|".join(
                part.encode()  # each part
                for part in parts
            ), "pkg")
        ''', EDIT)
    # Without an installation the key is the function's own value.
    _, text = edit_module(before, EDIT)
    namespace: dict = {}
    exec(compile(text, "edited.py", "exec"), namespace)
    assert namespace["key"](["a", "b"]) == b"a|b"


def test_non_ascii_text_before_the_value_on_its_line():
    """ast counts columns in UTF-8 bytes: the call must still go around the value, in a method too."""
    before = '''
        class Keys:
            def key(self, name):
                if name == "naïve — ☃": return "ключ" + name
                return name
        '''
    assert_edit(before, f'''
        class Keys:
            def key(self, name):
                if name == "naïve — ☃": return {WRAP}("ключ" + name, "pkg")
                return {WRAP}(name, "pkg")
        ''', EDIT, target="Keys.key")
    _, text = edit_module(before, EDIT, target="Keys.key")
    namespace: dict = {}
    exec(compile(text, "edited.py", "exec"), namespace)
    assert namespace["Keys"]().key("naïve — ☃") == "ключnaïve — ☃"


def test_returns_that_already_pass_through_the_key_are_left():
    assert_already_fixed(
        '''
        def key(cached):
            if cached:
                return __import__("astpatch").key_with_rules(cached, "pkg")
            return astpatch.key_with_rules(compute(), "pkg")
        ''',
        EDIT)
    # One of two already does: only the other changes.
    assert_edit(
        '''
        def key(cached):
            if cached:
                return astpatch.key_with_rules(cached, "pkg")
            return compute()
        ''',
        f'''
        def key(cached):
            if cached:
                return astpatch.key_with_rules(cached, "pkg")
            return {WRAP}(compute(), "pkg")
        ''',
        EDIT)


def test_a_function_that_returns_no_value_does_not_match():
    assert_no_match(
        '''
        def key():
            def inner():
                return 1
            compute(inner)
            return
        ''',
        EDIT, reason="key returns no value", target="key")


# ---------------------------------------------------------------------------------------------
# The rule set: a key rule is in force only while another rule (or an indexed entry point) targets
# its package.

KEY = astpatch.Rule(id="fakepkg-key-by-rules", summary="key by rules", module="fakepkg.keys", target="source_key",
                    edit=astpatch.KeyWithRules(package="fakepkg", reset="clear"), upstream="test fixture")


def hunk_rule(rule_id: str, module: str, target: str = "answer", after: str = "patched") -> astpatch.Rule:
    return astpatch.Rule(id=rule_id, summary="s", module=module, target=target, upstream="test fixture",
                         edit=astpatch.ApplyHunks(hunks=[astpatch.Hunk(before=['    return "upstream"'],
                                                                       after=[f'    return "{after}"'])]))


def fail(message: str) -> None:
    raise AssertionError(message)


def in_force(ruleset: RuleSet) -> bool:
    held = KEY in ruleset.for_module("fakepkg.keys")
    assert held == ("fakepkg.keys" in ruleset.modules())
    return held


def test_a_key_rule_is_in_force_only_with_another_rule_on_its_package():
    ruleset = RuleSet(fail)
    ruleset.add([KEY])
    assert not in_force(ruleset)
    ruleset.add([hunk_rule("other-package", "fakepkg2.work"), hunk_rule("other-top", "other.fakepkg")])
    assert not in_force(ruleset)  # a package that only starts with the same letters is another
    assert ruleset.rules_in_package("fakepkg") == []
    work = hunk_rule("fakepkg-work", "fakepkg.work")
    ruleset.add([work])
    assert in_force(ruleset)
    assert ruleset.rules_in_package("fakepkg") == [work]  # key rules aside

    later = RuleSet(fail)  # the other rule first, the key rule after it
    later.add([work, KEY])
    assert in_force(later)

    disabled = RuleSet(fail, frozenset({"fakepkg-work"}))
    disabled.add([KEY, work])
    assert not in_force(disabled)


def test_an_indexed_entry_point_targeting_the_package_puts_a_key_rule_in_force(modules):
    modules("fakepkg_plugin", 'from astpatch import ApplyHunks, Hunk, Rule\n\nRULE = Rule(id="plugin-work", '
            'summary="s", module="fakepkg.work", target="answer", upstream="u", edit=ApplyHunks(hunks=[Hunk('
            'before=["    return \\"upstream\\""], after=["    return \\"patched\\""])]))\n')
    ruleset = RuleSet(fail)
    ruleset.add([KEY])
    ruleset.add_pending([Plugin("elsewhere", "nowhere:RULE", "otherdist", ("fakepkg2.work",))])
    assert not in_force(ruleset)
    ruleset.add_pending([Plugin("work", "fakepkg_plugin:RULE", "fakedist", ("fakepkg.work",))])
    assert in_force(ruleset)
    # The key counts the entry point's rules: they load when the package's rules are asked for.
    assert [r.id for r in ruleset.rules_in_package("fakepkg")] == ["plugin-work"]


# ---------------------------------------------------------------------------------------------
# key_with_rules, in fresh interpreters

KEYS = '''\
"""A key of the package's source, memoised as torch's torch_key() is."""

calls = []


def memoised(function):
    kept = []

    def wrapper():
        if not kept:
            kept.append(function())
        return kept[0]

    def clear():
        kept.clear()

    wrapper.clear = clear
    return wrapper


@memoised
def source_key():
    calls.append(1)
    return b"fakepkg source"
'''
UPSTREAM_KEY = b"fakepkg source"
ANSWER = "def answer():\n    return 'upstream'\n"

RULE_FILE = '''\
from astpatch import ApplyHunks, Hunk, KeyWithRules, Rule

RULE = Rule(id={id!r}, summary="s", module={module!r}, target={target!r}, upstream="test fixture", gate={gate!r},
            edit={edit})
'''

PROGRAM = r'''
import json, sys
cache, before, rules = sys.argv[1], sys.argv[2], sys.argv[3:]
report = {}
if before:
    import fakepkg.keys
    report["key_before_install"] = fakepkg.keys.source_key().hex()
import astpatch
astpatch.install(rules=rules, cache_dir=cache)
import fakepkg.keys
report["key"] = fakepkg.keys.source_key().hex()
report["text_key"] = astpatch.key_with_rules("text", "fakepkg")
report["imported"] = sorted(m for m in ("fakepkg.work", "fakepkg.later") if m in sys.modules)
import fakepkg.work, fakepkg.later
fakepkg.keys.source_key.clear()
report.update({
    "key_after_imports": fakepkg.keys.source_key().hex(),
    "calls": len(fakepkg.keys.calls),
    "answers": [fakepkg.work.answer(), fakepkg.later.answer()],
    "outcomes": {o.rule_id: [o.module, o.status, o.reason, o.from_cache] for o in astpatch.applied()},
})
print(json.dumps(report))
'''


@pytest.fixture
def scene(tmp_path):
    s = Scenario(tmp_path, source=None, rule_file=None, dist="fakedist", version="1.0")
    s.write("fakepkg.keys", KEYS)
    s.write("fakepkg.work", ANSWER)
    s.write("fakepkg.later", ANSWER)
    s.write("fakepkg2.work", ANSWER)
    (tmp_path / "rules").mkdir()
    return s


def rule_file(scene: Scenario, rule_id: str, module: str = "fakepkg.work", *, after: str = "patched",
              before: str = "upstream", gate: str | None = None) -> Path:
    edit = f'ApplyHunks(hunks=[Hunk(before=[{f"    return {before!r}"!r}], after=[{f"    return {after!r}"!r}])])'
    path = scene.tmp / "rules" / f"{rule_id.replace('-', '_')}.py"
    path.write_text(RULE_FILE.format(id=rule_id, module=module, target="answer", gate=gate, edit=edit))
    return path


def key_rule_file(scene: Scenario) -> Path:
    path = scene.tmp / "rules" / "key.py"
    path.write_text(RULE_FILE.format(id="fakepkg-key-by-rules", module="fakepkg.keys", target="source_key", gate=None,
                                     edit='KeyWithRules(package="fakepkg", reset="clear")'))
    return path


def run(scene: Scenario, *rules: Path, before: bool = False) -> dict:
    return scene.python(PROGRAM, str(scene.cache), "yes" if before else "", *map(str, rules)).json()


def expected(value: bytes | str, *rules: Path) -> str:
    """The key as key_with_rules documents it: SHA-256 of the value and of the applied rules'
    fingerprints, sorted; hex."""
    loaded = load_rules(rules, fail)
    digest = hashlib.sha256(value if isinstance(value, bytes) else value.encode())
    for fingerprint in sorted(r.fingerprint() for r in loaded):
        digest.update(b"\0astpatch\0" + fingerprint.encode())
    return digest.hexdigest()


def test_without_another_rule_on_the_package_the_key_is_upstreams(scene):
    key = key_rule_file(scene)
    elsewhere = rule_file(scene, "fakepkg2-work", module="fakepkg2.work")
    report = run(scene, key, elsewhere)
    assert "fakepkg-key-by-rules" not in report["outcomes"]  # not in force: source_key is upstream's
    assert report["key"] == report["key_after_imports"] == UPSTREAM_KEY.hex()
    assert report["text_key"] == "text"


def test_a_rule_applied_to_the_package_changes_the_key(scene):
    """The key is computed before the rule's module is imported: the rule counts already (its
    rewrite is decided and cached then, and the import finds it), and the key is the same after
    the import."""
    key, work = key_rule_file(scene), rule_file(scene, "fakepkg-work")
    report = run(scene, key, work)
    assert report["imported"] == []
    assert report["key"] == report["key_after_imports"] == expected(UPSTREAM_KEY, work)
    assert report["key"] != UPSTREAM_KEY.hex()
    assert report["text_key"] == expected("text", work)  # a string key stays a string: hex
    assert report["answers"] == ["patched", "upstream"]
    assert report["outcomes"]["fakepkg-key-by-rules"][1] == "applied"
    assert report["outcomes"]["fakepkg-work"][1:] == ["applied", "applied 1 hunks", True]
    # Two rules on the package, one of them on a module never imported: both count.
    later = rule_file(scene, "fakepkg-later", module="fakepkg.later")
    both = run(scene, key, work, later)
    assert both["key"] == both["key_after_imports"] == expected(UPSTREAM_KEY, work, later)
    assert both["answers"] == ["patched", "patched"]


def test_already_fixed_and_not_applicable_rules_leave_the_key(scene):
    """The key rule is in force (they target the package), but they leave upstream's code."""
    key = key_rule_file(scene)
    fixed = rule_file(scene, "fakepkg-work-fixed", before="older", after="upstream")
    gated = rule_file(scene, "fakepkg-later-gated", module="fakepkg.later", gate="fakedist>=2")
    report = run(scene, key, fixed, gated)
    assert report["outcomes"]["fakepkg-key-by-rules"][1] == "applied"
    assert report["outcomes"]["fakepkg-work-fixed"][1] == "already-fixed"
    assert report["outcomes"]["fakepkg-later-gated"][1] == "not-applicable"
    assert report["key"] == report["key_after_imports"] == UPSTREAM_KEY.hex()
    assert report["text_key"] == "text"


def test_another_version_of_a_rule_gives_another_key(scene):
    key = key_rule_file(scene)
    first = run(scene, key, rule_file(scene, "fakepkg-work"))
    second = run(scene, key, rule_file(scene, "fakepkg-work", after="patched again"))
    assert first["answers"][0] == "patched" and second["answers"][0] == "patched again"
    assert len({first["key"], second["key"], UPSTREAM_KEY.hex()}) == 3


def test_a_key_function_imported_before_install_is_patched_live_and_its_memo_dropped(scene):
    key, work = key_rule_file(scene), rule_file(scene, "fakepkg-work")
    report = run(scene, key, work, before=True)
    assert report["key_before_install"] == UPSTREAM_KEY.hex()
    module, status, reason, _ = report["outcomes"]["fakepkg-key-by-rules"]
    assert (module, status) == ("fakepkg.keys", "applied")
    assert reason.endswith("applied to the live function because fakepkg.keys was imported before astpatch.install()")
    assert report["key"] == report["key_after_imports"] == expected(UPSTREAM_KEY, work)
    assert report["calls"] == 3  # before install(), after it (the memo was dropped), after clear()


def test_a_returned_yield_keeps_its_parentheses():
    """`return (yield)`: the parentheses are outside the value; it gets its own as an argument."""
    assert_edit(
        '''
        def key():
            return (yield)
        ''',
        f'''
        def key():
            return ({WRAP}((yield), "pkg"))
        ''',
        EDIT)


UNINSTALLED = r'''
import json, sys
import astpatch
with astpatch.install(rules=sys.argv[2:], cache_dir=sys.argv[1]):
    import fakepkg.keys, fakepkg.work
    inside = fakepkg.keys.source_key().hex()
fakepkg.keys.source_key.clear()
print(json.dumps({"after": fakepkg.keys.source_key().hex(), "inside": inside, "answer": fakepkg.work.answer(),
                  "tuple": list(astpatch.key_with_rules((1, "a"), "fakepkg"))}))
'''


def test_the_key_holds_after_uninstall_while_the_patched_code_runs(scene):
    """Leaving `with install():` removes the finder, not the patched code: the key still carries
    the rules applied (a module not imported yet would now be imported unpatched, and does not count).
    A tuple key keeps its items and gets the digest appended."""
    key, work = key_rule_file(scene), rule_file(scene, "fakepkg-work")
    later = rule_file(scene, "fakepkg-later", module="fakepkg.later")
    report = scene.python(UNINSTALLED, str(scene.cache), str(key), str(work), str(later)).json()
    assert report["answer"] == "patched"
    # Installed, the rule on fakepkg.later (not imported yet) counts: its import would apply it.
    assert report["inside"] == expected(UPSTREAM_KEY, work, later)
    # Uninstalled, that import would not: only the rule the running code has counts.
    assert report["after"] == expected(UPSTREAM_KEY, work)
    digest = expected(repr((1, "a")).encode(), work)
    assert report["tuple"] == [1, "a", digest]
