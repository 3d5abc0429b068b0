"""Rule faults: one clear message each, and a traceback into the program only in strict mode."""

from __future__ import annotations

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
    run = s.run(install_args=f"rules=[{str(s.rule)!r}, {str(second)!r}], cache_dir={str(s.cache)!r}")
    assert run["output"] == PATCHED and run["outcomes"] == [["applied", False], ["applied", False]]
    assert run["reasons"] == ["added ValueError to `except (TypeError, AttributeError)`",
                              "added KeyError to `except (TypeError, AttributeError, ValueError)`"]


def test_two_rules_with_one_id(tmp_path):
    """Two rule files declare the same rule id: the first wins, one message names both files."""
    s = Scenario(tmp_path)
    twin = tmp_path / "twin.py"
    twin.write_text(RULE_FILE.replace('"ValueError"', '"KeyError"'))
    run = s.run(install_args=f"rules=[{str(s.rule)!r}, {str(twin)!r}], cache_dir={str(s.cache)!r}")
    run.assert_patched(from_cache=False)
    assert run.warnings == [f"astpatch: rule id 'pickler-valueerror' from {twin} is already defined by {s.rule}; "
                            "the first one is used."]


def test_a_gate_naming_a_distribution_that_is_not_installed(tmp_path):
    """A gate on a distribution that is not installed (a typo, often)."""
    s = Scenario(tmp_path, rule_file=RULE_FILE.replace("upstream=", 'gate="pickle-dist>=1",\n    upstream='))
    run = s.run()
    assert run["output"] == UPSTREAM and run["outcomes"] == [["not-applicable", False]]
    assert run.warnings == [
        "astpatch: rule pickler-valueerror is not applied to pickler: pickle-dist is not installed (gate "
        "pickle-dist>=1). Check the distribution name in the rule's gate."]


def test_a_rule_path_that_does_not_exist(tmp_path):
    """install(rules=[...]) names a path that does not exist."""
    s = Scenario(tmp_path)
    missing = tmp_path / "nowhere"
    run = s.run(install_args=f"rules=[{str(missing)!r}, {str(s.rule)!r}], cache_dir={str(s.cache)!r}")
    run.assert_patched()
    assert run.warnings == [f"astpatch: rule path {missing} does not exist; its rules are not loaded."]
