"""Composition with other import hooks: pytest's assertion rewriting, and typeguard's hook."""

from __future__ import annotations

import pytest

from scenario import PATCHED, Scenario

TYPEGUARD_SOURCE = '''\
import pickle


class Bypass(Exception):
    pass


class Pickler:
    def dumps(self, obj: object, protocol: int = 4) -> bytes:
        try:
            return pickle.dumps(obj, protocol)
        except (TypeError, AttributeError) as e:
            raise Bypass("Failed to pickle") from e
'''

TYPEGUARD_PROGRAM = r'''
import json, sys, warnings
warnings.simplefilter("always")
import astpatch
from typeguard import install_import_hook, TypeCheckError
order = sys.argv[1]
if order == "typeguard-then-astpatch":
    install_import_hook(["pickler", "other"])
    astpatch.install(rules=[{rule!r}], cache_dir={cache!r})
else:
    astpatch.install(rules=[{rule!r}], cache_dir={cache!r})
    install_import_hook(["pickler", "other"])
import pickler, other

class Cyclic:
    def __reduce__(self):
        raise ValueError("cycle")

try:
    pickler.Pickler().dumps(Cyclic())
    fixed = "no error"
except pickler.Bypass as e:
    fixed = "Bypass from " + type(e.__cause__).__name__
except ValueError:
    fixed = "ValueError escaped"
def checked(call):
    try:
        call()
        return "not checked"
    except TypeCheckError:
        return "TypeCheckError"
print(json.dumps({{
    "fixed": fixed,
    "typeguard_on_target": checked(lambda: pickler.Pickler().dumps(1, protocol="four")),
    "typeguard_on_other": checked(lambda: other.f("not an int")),
    "outcomes": [o.status for o in astpatch.applied()],
    "meta_path": [type(f).__name__ for f in sys.meta_path][:3],
}}))
'''


def run_typeguard(tmp_path, order: str):  # type: ignore[no-untyped-def]
    s = Scenario(tmp_path, source=TYPEGUARD_SOURCE)
    s.write("other", "def f(x: int) -> int:\n    return x\n")
    result = s.python(TYPEGUARD_PROGRAM.format(rule=str(s.rule), cache=str(s.cache)), order, timeout=120)
    return result.json(), result.stderr


def test_typeguard_hook_installed_before_astpatch_both_apply_to_the_same_module(tmp_path):
    """typeguard's hook, then astpatch (first on sys.meta_path): both transform the target."""
    data, stderr = run_typeguard(tmp_path, "typeguard-then-astpatch")
    assert data["meta_path"][:2] == ["PatchingFinder", "TypeguardFinder"]
    assert data["fixed"] == PATCHED
    assert data["typeguard_on_target"] == "TypeCheckError"
    assert data["typeguard_on_other"] == "TypeCheckError"
    assert data["outcomes"] == ["applied"]
    assert "AstpatchWarning" not in stderr


def test_typeguard_hook_installed_after_astpatch_claims_its_modules_first(tmp_path):
    """astpatch, then typeguard's hook (first on sys.meta_path): typeguard keeps working.

    A hook placed before astpatch that claims a target module loads it without asking astpatch;
    the README says to call astpatch.install() after installing such a hook.
    """
    data, _ = run_typeguard(tmp_path, "astpatch-then-typeguard")
    assert data["meta_path"][:2] == ["TypeguardFinder", "PatchingFinder"]
    assert data["typeguard_on_target"] == "TypeCheckError"
    assert data["typeguard_on_other"] == "TypeCheckError"
    assert data["fixed"] == "ValueError escaped" and data["outcomes"] == []


@pytest.mark.installed
def test_under_pytest_assertion_rewriting(tmp_path):
    """astpatch in a pytest session: assertion rewriting still explains failures; the target is patched."""
    tests = tmp_path / "proj"
    tests.mkdir()
    (tests / "test_x.py").write_text(
        "import pickler\n\n"
        "def test_patched():\n    assert 'ValueError' in pickler.Pickler.dumps.__code__.co_names\n\n"
        "def test_rewritten_assert():\n    left, right = [1, 2], [1, 3]\n    assert left == right\n")
    result = Scenario(tmp_path, cwd=tests).pytest("--astpatch", "-q", timeout=120)
    assert "1 failed, 1 passed" in result.stdout, result.stdout
    assert "At index 1 diff: 2 != 3" in result.stdout  # pytest's rewritten assertion explains the failure
    assert "pickler-valueerror on pickler: applied" in result.stdout


ALREADY_FIXED_PROGRAM = r'''
import json
import astpatch
from typeguard import install_import_hook, TypeCheckError
install_import_hook(["pickler"])
astpatch.install(rules=[{rule!r}], cache_dir={cache!r})
import pickler
try:
    pickler.count()
    count = "not checked"
except TypeCheckError:
    count = "TypeCheckError"
print(json.dumps({{"count": count, "outcomes": [[o.status, o.from_cache] for o in astpatch.applied()]}}))
'''


def test_typeguard_hook_still_instruments_a_target_that_is_already_fixed(tmp_path):
    """typeguard's hook, then astpatch, on a target upstream already fixed: typeguard still instruments it.

    No rule changes the module, so astpatch runs upstream's code, which must still come from
    typeguard's loader (its instrumented code), not from a plain compile of the file: when the
    outcome is computed and when it is read from the cache.
    """
    fixed = TYPEGUARD_SOURCE.replace("(TypeError, AttributeError)", "(TypeError, AttributeError, ValueError)")
    s = Scenario(tmp_path, source=fixed + '\n\ndef count() -> int:\n    return "three"\n')
    program = ALREADY_FIXED_PROGRAM.format(rule=str(s.rule), cache=str(s.cache))
    for from_cache in (False, True):
        result = s.python(program, timeout=120)
        assert result.json() == {"count": "TypeCheckError", "outcomes": [["already-fixed", from_cache]]}
        assert "AstpatchWarning" not in result.stderr
