"""The shipped rule against torch's released wheels, before and after upstream's fix.

The module's source and the version are read from each wheel file, nothing is installed or
imported. `python3 tools/test.py --tier wheels` downloads the wheels once into .venvs/wheels.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from astpatch._base import outcomes as oc
from astpatch._base.lines import patched_lines, split_lines
from astpatch._engine.rewrite import rewrite
from astpatch._model.rulefiles import builtin_rules_dir
from astpatch._model.ruleset import load_rules

pytestmark = pytest.mark.wheels
MODULE_PATH = "torch/_inductor/codecache.py"
FIXED_CLAUSE = "        except (TypeError, AttributeError, pickle.PicklingError, ValueError) as e:\n"


def wheel(version: str) -> tuple[str, str]:
    """(source of codecache.py, version from METADATA) of the torch `version` wheel."""
    directory = os.environ.get("ASTPATCH_TEST_WHEELS")
    if not directory:
        pytest.fail("ASTPATCH_TEST_WHEELS is not set; run `python3 tools/test.py --tier wheels`")
    found = sorted(Path(directory).glob(f"torch-{version}[-+]*.whl"))
    assert found, f"no torch {version} wheel in {directory}"
    with zipfile.ZipFile(found[0]) as z:
        source = z.read(MODULE_PATH).decode("utf-8")
        metadata = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        meta = z.read(metadata).decode("utf-8")
    dist_version = next(line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("Version:"))
    return source, dist_version


VALUEERROR = "torch-fxgraph-cache-key-valueerror"
PYBIND11 = "torch-fxgraph-cache-key-pybind11-runtimeerror"


def rule(rule_id: str = VALUEERROR):
    (found,) = [r for r in load_rules([builtin_rules_dir()], print) if r.id == rule_id]
    return found


def shipped():
    """The two shipped rules that fix `dumps` (the key rule is tested on its own below)."""
    return [r for r in load_rules([builtin_rules_dir()], print) if r.target == "FxGraphCachePickler.dumps"]


@pytest.mark.parametrize("release", ["2.9.0", "2.9.1", "2.10.0", "2.11.0", "2.12.0", "2.13.0"])
def test_the_key_rule_applies_to_every_release(release):
    """torch-compile-caches-key-by-rules is not a backport: every release's torch_key() returns
    through key_with_rules once patched, and nothing else in the module changes."""
    import ast

    (key_rule,) = [r for r in load_rules([builtin_rules_dir()], print) if r.id == "torch-compile-caches-key-by-rules"]
    source, version = wheel(release)
    result = rewrite("torch._inductor.codecache", MODULE_PATH, source, [key_rule], {"torch": version})
    assert [o.status for o in result.outcomes] == [oc.APPLIED]
    patched = "".join(patched_lines(split_lines(source), result.spans))
    function = next(n for n in ast.parse(patched).body if isinstance(n, ast.FunctionDef) and n.name == "torch_key")
    returns = [n for n in ast.walk(function) if isinstance(n, ast.Return) and n.value is not None]
    outer = [r for r in returns if isinstance(r.value, ast.Call) and getattr(r.value.func, "attr", "") == "key_with_rules"]
    assert len(outer) == 2 and all(r.value.args[1].value == "torch" for r in outer)  # type: ignore[union-attr]
    changed = [(a, b) for a, b in zip(split_lines(source), split_lines(patched)) if a != b]
    assert len(changed) == 2 and all(b.strip() == f"return __import__(\"astpatch\").key_with_rules({a.strip()[7:]}, \"torch\")"
                                     for a, b in changed)


def dumps_source(text: str) -> str:
    return text[text.index("    def dumps(") : text.index("    def get_hash(")]


@pytest.mark.parametrize("rule_id", [VALUEERROR, PYBIND11])
@pytest.mark.parametrize("version, expected", [
    ("2.9.1", oc.NOT_APPLICABLE),
    ("2.10.0", oc.APPLIED),
    ("2.11.0", oc.ALREADY_FIXED),
    ("2.13.0", oc.ALREADY_FIXED),
])
def test_outcome_per_release(version, expected, rule_id):
    source, dist_version = wheel(version)
    result = rewrite("torch._inductor.codecache", MODULE_PATH, source, [rule(rule_id)], {"torch": dist_version})
    (outcome,) = result.outcomes
    assert outcome.status == expected, outcome.reason
    if expected == oc.NOT_APPLICABLE:
        assert outcome.reason == f"torch {dist_version} is outside the gate torch>=2.10"
    if expected != oc.APPLIED:
        assert result.code is None and result.spans == []


def test_the_patched_2_10_clause_is_the_one_2_11_shipped():
    source, version = wheel("2.10.0")
    result = rewrite("torch._inductor.codecache", MODULE_PATH, source, [rule()], {"torch": version})
    before = split_lines(source)
    after = patched_lines(before, result.spans)
    changed = [(a, b) for a, b in zip(before, after) if a != b]
    assert changed == [("        except (TypeError, AttributeError, pickle.PicklingError) as e:\n", FIXED_CLAUSE)]
    fixed_source, _ = wheel("2.11.0")
    assert FIXED_CLAUSE in split_lines(fixed_source)


def test_both_rules_together_turn_2_10_dumps_into_2_11_dumps():
    """The shipped rules on torch 2.10.0's source give, character for character, 2.11.0's dumps."""
    source, version = wheel("2.10.0")
    result = rewrite("torch._inductor.codecache", MODULE_PATH, source, shipped(), {"torch": version})
    assert [o.status for o in result.outcomes] == [oc.APPLIED, oc.APPLIED]
    patched = "".join(patched_lines(split_lines(source), result.spans))
    assert dumps_source(patched) == dumps_source(wheel("2.11.0")[0])
    for later in ("2.11.0", "2.13.0"):
        text, version = wheel(later)
        outcomes = rewrite("torch._inductor.codecache", MODULE_PATH, text, shipped(), {"torch": version}).outcomes
        assert [o.status for o in outcomes] == [oc.ALREADY_FIXED, oc.ALREADY_FIXED]


def test_astpatch_check_matrix_against_the_wheels():
    import subprocess
    import sys

    from conftest import clean_env

    directory = Path(os.environ["ASTPATCH_TEST_WHEELS"])
    wheels = [str(sorted(directory.glob(f"torch-{v}[-+]*.whl"))[0]) for v in ("2.9.1", "2.10.0", "2.11.0", "2.13.0")]
    args = [arg for wheel in wheels for arg in ("--against", wheel)]
    result = subprocess.run([sys.executable, "-m", "astpatch", "check", "--rule", VALUEERROR, "--rule", PYBIND11,
                             *args], capture_output=True, text=True, env=clean_env(), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    header, row, row2 = result.stdout.splitlines()[:3]
    assert header.split() == ["rule", "torch", "2.9.1", "torch", "2.10.0", "torch", "2.11.0", "torch", "2.13.0+cpu"] \
        or header.split() == ["rule", "torch", "2.9.1", "torch", "2.10.0", "torch", "2.11.0", "torch", "2.13.0"]
    assert row.split() == [VALUEERROR, "not-applicable", "applied", "already-fixed", "already-fixed"]
    assert row2.split() == [PYBIND11, "not-applicable", "applied", "already-fixed", "already-fixed"]


@pytest.mark.python311  # 3.10 has no end positions in code objects, so it never takes the fast path
def test_the_fast_path_equals_a_full_rewrite_on_torch_2_10():
    """From the upstream code objects, compiling only dumps: byte-identical to parsing and compiling it all."""
    from conftest import code_fields

    source, version = wheel("2.10.0")
    upstream = compile(source, MODULE_PATH, "exec", dont_inherit=True)
    for rules in ([rule()], shipped()):  # in place (same line count), then moved past the end (lines added)
        fast = rewrite("torch._inductor.codecache", MODULE_PATH, source, rules, {"torch": version}, upstream=upstream)
        slow = rewrite("torch._inductor.codecache", MODULE_PATH, source, rules, {"torch": version})
        assert {o.status for o in fast.outcomes} == {oc.APPLIED}
        assert code_fields(fast.code) == code_fields(slow.code)
