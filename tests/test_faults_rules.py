"""Rule faults: one clear message each, and a traceback into the program only in strict mode."""

from __future__ import annotations

import pytest

from conftest import RULE_FILE
from scenario import PATCHED, UPSTREAM, Scenario

RAISING_RULE = '''
from astpatch import Edit, Rule

class Raises(Edit):
    kind = "raises"
    def params(self):
        return {}
    def apply(self, target):
        raise RuntimeError("the edit broke")

RULE = Rule(id="pickler-valueerror", summary="s", module="pickler", target="Pickler.dumps",
            edit=Raises(), upstream="test fixture")
'''


def test_an_edit_that_raises(tmp_path):
    """A rule whose edit raises."""
    s = Scenario(tmp_path, rule_file=RAISING_RULE)
    run = s.run()
    assert run["output"] == UPSTREAM and run["outcomes"] == [["failed", False]]
    assert run.warnings == [
        "astpatch: rule pickler-valueerror was not applied to pickler: the edit raises raised RuntimeError: the edit "
        "broke. pickler is imported without this fix. Run `astpatch list` to see every rule's state, update "
        "astpatch, or set ASTPATCH_DISABLE=pickler-valueerror to turn the rule off."]
    strict = s.run(ASTPATCH_STRICT="1")
    assert strict.returncode == 1
    assert "astpatch._base.messages.AstpatchError: astpatch: rule pickler-valueerror was not applied" in strict.stderr


def test_a_rule_file_with_a_missing_field(tmp_path):
    """A rule file whose Rule lacks `upstream`."""
    s = Scenario(tmp_path, rule_file=RULE_FILE.replace('    upstream="test fixture",\n', ""))
    run = s.run()
    assert run["output"] == UPSTREAM and run["outcomes"] == []
    assert run.warnings == [
        f"astpatch: rule file {s.rule} failed to load: TypeError: Rule.__init__() missing 1 required keyword-only "
        "argument: 'upstream'. The other rules still apply."]


def test_a_rule_file_with_a_wrong_field(tmp_path):
    """A rule file whose Rule has a target that is not a dotted name."""
    s = Scenario(tmp_path, rule_file=RULE_FILE.replace('target="Pickler.dumps"', 'target="Pickler dumps"'))
    run = s.run()
    assert run["output"] == UPSTREAM
    assert run.warnings == [
        f"astpatch: rule file {s.rule} failed to load: RuleError: rule 'pickler-valueerror': target must be a dotted "
        "name, got 'Pickler dumps'. The other rules still apply."]


def test_two_rules_on_one_function_apply_in_order(tmp_path):
    """Two rule files edit the same function: applied in load order, both reported."""
    s = Scenario(tmp_path)
    second = tmp_path / "second.py"
    second.write_text(RULE_FILE.replace("pickler-valueerror", "pickler-keyerror").replace('"ValueError"', '"KeyError"'))
    run = s.run(install_args=s.install_args(s.rule, second))
    assert run["output"] == PATCHED and run["outcomes"] == [["applied", False], ["applied", False]]
    assert run["reasons"] == ["added ValueError to `except (TypeError, AttributeError)`",
                              "added KeyError to `except (TypeError, AttributeError, ValueError)`"]


def test_two_rules_with_one_id(tmp_path):
    """Two rule files declare the same rule id: the first wins, one message names both files."""
    s = Scenario(tmp_path)
    twin = tmp_path / "twin.py"
    twin.write_text(RULE_FILE.replace('"ValueError"', '"KeyError"'))
    run = s.run(install_args=s.install_args(s.rule, twin))
    run.assert_patched(from_cache=False)
    assert run.warnings == [f"astpatch: rule id 'pickler-valueerror' from {twin} is already defined by {s.rule}; "
                            "the first one is used."]


def test_a_gate_naming_a_distribution_that_is_not_installed(tmp_path):
    """A gate on a distribution that is not installed (a typo, often)."""
    s = Scenario(tmp_path, gate="pickle-dist>=1")
    run = s.run()
    assert run["output"] == UPSTREAM and run["outcomes"] == [["not-applicable", False]]
    assert run.warnings == [
        "astpatch: rule pickler-valueerror is not applied to pickler: pickle-dist is not installed (gate "
        "pickle-dist>=1). Check the distribution name in the rule's gate."]


def test_a_rule_path_that_does_not_exist(tmp_path):
    """install(rules=[...]) names a path that does not exist."""
    s = Scenario(tmp_path)
    missing = tmp_path / "nowhere"
    run = s.run(install_args=s.install_args(missing, s.rule))
    run.assert_patched()
    assert run.warnings == [f"astpatch: rule path {missing} does not exist; its rules are not loaded."]


KIND_WITHOUT_PARAMS = '''
from astpatch import Edit, EditResult, Rule

class NoParams(Edit):
    kind = "no-params"
    def apply(self, target):
        return EditResult.already_fixed("nothing to do")

RULE = Rule(id="pickler-custom", summary="s", module="pickler", target="Pickler.dumps",
            edit=NoParams(), upstream="test fixture")
'''

BAD_PARAMS = {
    "returns a list": ("ListParams", "return ['add', 'ValueError']",
                       "returned list, not a dict of its parameters as plain data"),
    "raises": ("RaisingParams", "raise KeyError('add')",
               "raised KeyError: 'add'; an edit kind must return its parameters as a dict of plain data"),
}


def bad_params_kind(name: str, body: str) -> str:
    return KIND_WITHOUT_PARAMS.replace("NoParams", name).replace(
        "    def apply", f"    def params(self):\n        {body}\n    def apply")


def test_an_edit_kind_without_params(tmp_path):
    """A rule file whose edit kind does not define params(): that file fails to load, named, and the rest applies."""
    s = Scenario(tmp_path)
    custom = tmp_path / "custom.py"
    custom.write_text(KIND_WITHOUT_PARAMS)
    run = s.run(install_args=s.install_args(custom, s.rule))
    run.assert_patched(from_cache=False)
    (message,) = run.warnings
    # Python words the abstract method differently across versions; the class and the method are named.
    start = f"astpatch: rule file {custom} failed to load: TypeError: Can't instantiate abstract class NoParams "
    end = ". The other rules still apply."
    assert message.startswith(start) and message.endswith(end), message
    assert "params" in message[len(start):-len(end)] and "update astpatch" not in message


@pytest.mark.parametrize("case", BAD_PARAMS)
def test_an_edit_kind_whose_params_are_not_a_dict(tmp_path, case):
    """A rule file whose edit kind's params() gives no dict: that file fails to load, named, and the rest applies."""
    name, body, problem = BAD_PARAMS[case]
    s = Scenario(tmp_path)
    custom = tmp_path / "custom.py"
    custom.write_text(bad_params_kind(name, body))
    run = s.run(install_args=s.install_args(custom, s.rule))
    run.assert_patched(from_cache=False)
    assert run.warnings == [f"astpatch: rule file {custom} failed to load: RuleError: rule 'pickler-custom': the edit "
                            f"kind {name}'s params() {problem}. The other rules still apply."]


@pytest.mark.parametrize("case", BAD_PARAMS)
def test_rule_refuses_an_edit_whose_params_are_not_a_dict(case):
    """Rule() refuses an edit whose params() does not return a dict, naming the kind and params()."""
    from astpatch import Rule, RuleError

    name, body, problem = BAD_PARAMS[case]
    namespace: dict = {}
    exec(bad_params_kind(name, body).split("\nRULE = ")[0], namespace)
    with pytest.raises(RuleError) as raised:
        Rule(id="pickler-custom", summary="s", module="pickler", target="Pickler.dumps", edit=namespace[name](),
             upstream="test fixture")
    assert str(raised.value) == f"rule 'pickler-custom': the edit kind {name}'s params() {problem}"


def test_rule_files_leave_no_bytecode_in_the_rule_directory(tmp_path):
    """Loading a rule directory with bytecode writing on writes no __pycache__ into it."""
    s = Scenario(tmp_path, rule_dir=True)
    s.write("plain", "VALUE = 1\n")
    # Bytecode writing on (unset), and the rule directory named, not its file.
    run = s.run(after="import plain", install_args=s.install_args(s.rules), PYTHONDONTWRITEBYTECODE=None)
    run.assert_patched(from_cache=False)
    assert list((s.site / "__pycache__").glob("plain.*.pyc"))  # bytecode writing was on in that process
    assert sorted(p.name for p in s.rules.iterdir()) == ["pickler_rule.py"]
