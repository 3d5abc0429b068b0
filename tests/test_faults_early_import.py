"""A target imported before install(): its live function gets the patched code, or one warning."""

from __future__ import annotations

from scenario import PATCHED, UPSTREAM, Scenario


def test_imported_before_install_is_patched_on_the_live_function(tmp_path):
    """The target is imported, then install(): the function's code object is replaced."""
    s = Scenario(tmp_path)
    run = s.run(before="import pickler; held = pickler.Pickler.dumps")
    run.assert_patched(from_cache=False)
    assert run["reasons"][0].endswith("applied to the live function because pickler was imported before astpatch.install()")
    assert run.warnings == []


SUPER_RULE = '''
from astpatch import Edit, EditResult, Rule

class UsesSuper(Edit):
    """Makes dumps call super(): the new code needs a __class__ cell the live function lacks."""
    kind = "uses-super"
    def params(self):
        return {}
    def apply(self, target):
        code = target.code.replace("except (TypeError, AttributeError) as e:",
                                   "except (TypeError, AttributeError, ValueError) as e:")
        return EditResult.applied_code(code.replace("return pickle.dumps(obj)",
                                                    "return super().__init__() or pickle.dumps(obj)"))

RULE = Rule(id="pickler-valueerror", summary="s", module="pickler", target="Pickler.dumps",
            edit=UsesSuper(), upstream="test fixture")
'''


def test_a_closure_that_would_change_leaves_the_function_with_one_warning(tmp_path):
    """The patched function needs other closure cells than the live one has."""
    s = Scenario(tmp_path, rule_file=SUPER_RULE)
    assert s.run()["output"] == PATCHED  # imported after install(): rewritten normally
    run = s.run(before="import pickler")
    assert run["patched"] is False and run["output"] == UPSTREAM
    assert run["outcomes"] == [["failed", True]]
    assert run.warnings == [
        "astpatch: rule pickler-valueerror was not applied to pickler: pickler was imported before astpatch.install(), "
        "and the patched Pickler.dumps needs other closure variables than the live one. Call astpatch.install() "
        "before anything imports pickler, or run the program with `astpatch run`. pickler is imported without this "
        "fix. Run `astpatch list` to see every rule's state, update astpatch, or set "
        "ASTPATCH_DISABLE=pickler-valueerror to turn the rule off."
    ]


def test_a_late_import_with_strict_still_patches(tmp_path):
    """Strict mode, target imported first: the live patch is not an error."""
    s = Scenario(tmp_path)
    run = s.run(before="import pickler", ASTPATCH_STRICT="1")
    run.assert_patched(from_cache=False)
    late = "applied to the live function because pickler was imported before astpatch.install()"
    assert run["reasons"][0].endswith(late)
    assert run.warnings == [] and "AstpatchError" not in run.stderr
