"""ASTPATCH_LOG=debug: one line per decision, and the whole traceback of an edit that raised."""

from __future__ import annotations

from scenario import Scenario

RAISING_RULE = '''
from astpatch import Edit, Rule


class Broken(Edit):
    kind = "broken"

    def params(self):
        return {}

    def apply(self, target):
        return helper_that_fails(target)


def helper_that_fails(target):
    raise KeyError("no such clause")


RULE = Rule(id="broken-edit", summary="An edit that raises", module="pickler", target="Pickler.dumps",
            edit=Broken(), upstream="test fixture")
'''


def test_an_edit_that_raises_keeps_its_traceback_when_tracing(tmp_path):
    scenario = Scenario(tmp_path, rule_file=RAISING_RULE)
    traced = scenario.run(ASTPATCH_LOG="debug")
    assert traced["output"] == "ValueError escaped"  # upstream's code runs
    assert traced["reasons"] == ["the edit broken raised KeyError: 'no such clause'"]
    assert "pickler: the edit of rule broken-edit raised:\nTraceback (most recent call last):" in traced.stderr
    assert 'in helper_that_fails\n    raise KeyError("no such clause")' in traced.stderr
    (tmp_path / "quiet").mkdir()
    quiet = Scenario(tmp_path / "quiet", rule_file=RAISING_RULE).run()
    assert quiet["reasons"] == traced["reasons"] and "Traceback" not in quiet.stderr
    assert len(quiet.warnings) == 1 and "the edit broken raised KeyError" in quiet.warnings[0]
