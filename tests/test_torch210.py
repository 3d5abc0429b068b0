"""Real torch 2.10.0: the bug, the fix, and the properties of the fixed function.

Each case runs in a fresh interpreter, so torch is imported once per case, with or without
astpatch. Slow tier: run by `python3 tools/test.py` in the torch 2.10.0 environment.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import check, clean_env, require_torch
from torch_probes import COMPILE, INSPECT, KEYED_COMPILE, PICKLER, inductor_env

pytestmark = pytest.mark.torch210
RULE_ID = "torch-fxgraph-cache-key-valueerror"
PYBIND11_RULE = "torch-fxgraph-cache-key-pybind11-runtimeerror"
KEY_RULE = "torch-compile-caches-key-by-rules"


@pytest.fixture(autouse=True, scope="module")
def real_torch_210():
    require_torch("2.10.0")


def run(program: str, *args: str) -> dict:
    result = subprocess.run([sys.executable, "-c", program, *args], capture_output=True, text=True,
                            env=clean_env(), timeout=900)
    return json.loads(check(result).splitlines()[-1])


def test_without_astpatch_a_valueerror_escapes_dumps(tmp_path):
    report = run(PICKLER, "plain")
    assert report["cycle"]["raised"] == "ValueError"
    assert report["ctypes"]["raised"] == "ValueError"
    assert report["keyerror"]["raised"] == "KeyError"
    assert report["pybind11"]["raised"] == "RuntimeError"
    assert report["runtimeerror"]["raised"] == "RuntimeError"


def test_with_astpatch_the_valueerror_becomes_a_cache_bypass(tmp_path):
    report = run(PICKLER, "astpatch", str(tmp_path / "cache"))
    cycle = report["cycle"]
    assert cycle["raised"] == "BypassFxGraphCache"
    assert cycle["cause"] == "ValueError"
    assert cycle["cause_message"].startswith("fast mode: can't pickle cyclic objects")
    assert report["ctypes"]["raised"] == "BypassFxGraphCache"
    assert report["ctypes"]["cause"] == "ValueError"
    assert report["warnings_logged"] == 3  # "Failed to pickle cache key", once per bypass (and pybind11)
    assert report["next_object_ok"] is True  # the stream was reset by the finally clause
    assert report["keyerror"]["raised"] == "KeyError" and report["keyerror"]["cause"] is None
    # One frame for dumps: no wrapper.
    assert len(report["keyerror"]["dumps_frames"]) == 1
    assert report["keyerror"]["dumps_frames"][0][0].endswith("torch/_inductor/codecache.py")
    # Both rules, applied together: 2.10's dumps becomes 2.11's. They target torch, so the rule that
    # keys torch's compile caches by the applied rules is in force too.
    assert report["outcomes"] == [
        {"rule": PYBIND11_RULE, "module": "torch._inductor.codecache", "outcome": "applied",
         "reason": "added `except RuntimeError` after `except (TypeError, AttributeError, pickle.PicklingError)`",
         "from_cache": False, "version": "2.10.0"},
        {"rule": KEY_RULE, "module": "torch._inductor.codecache", "outcome": "applied",
         "reason": "2 returns of torch_key key by the rules applied to torch", "from_cache": False, "version": None},
        {"rule": RULE_ID, "module": "torch._inductor.codecache", "outcome": "applied",
         "reason": "added ValueError to `except (TypeError, AttributeError, pickle.PicklingError)`",
         "from_cache": False, "version": "2.10.0"},
    ]


def test_a_pybind11_object_that_is_not_pickleable_bypasses_the_cache(tmp_path):
    plain = run(PICKLER, "plain")
    assert plain["pybind11"]["raised"] == "RuntimeError"  # torch 2.10 lets it escape
    report = run(PICKLER, "astpatch", str(tmp_path / "cache"))
    pybind11 = report["pybind11"]
    assert pybind11["raised"] == "BypassFxGraphCache" and pybind11["cause"] == "RuntimeError"
    assert "pybind11" in pybind11["cause_message"] and pybind11["cause_message"].endswith("is not pickleable.")
    # Any other RuntimeError is re-raised unchanged, as in torch 2.11.
    assert report["runtimeerror"]["raised"] == "RuntimeError" and report["runtimeerror"]["cause"] is None
    assert len(report["runtimeerror"]["dumps_frames"]) == 1
    assert report["warnings_logged"] == 3  # cycle, ctypes, pybind11
    assert report["next_object_ok"] is True


def test_torch_compile_bypasses_the_cache_instead_of_failing(tmp_path):
    plain = run(COMPILE, "plain")
    assert plain["compiled"] is False
    assert "ValueError: fast mode: can't pickle cyclic objects" in plain["error"]
    fixed = run(COMPILE, "astpatch", str(tmp_path / "cache"))
    assert fixed["compiled"] is True, fixed.get("error")
    assert fixed["counters"].get("fxgraph_cache_bypass") == 1


def test_the_fixed_function_is_upstreams_own_function_with_one_clause_changed(tmp_path):
    cache = str(tmp_path / "cache")
    run(PICKLER, "astpatch", cache)  # fill the cache
    report = run(INSPECT, cache)
    assert report["co_filename"] == report["file"]
    assert report["function_type"] == "function"
    assert report["wrapped"] is False
    assert report["qualname"] == "FxGraphCachePickler.dumps"
    # The rules change one line of dumps in place and insert seven after its line 630: those are
    # compiled past the end of the file (4,445 lines, a blank line and a note), and every other
    # line, dumps' own included, keeps its number. inspect reads dumps from its first line in the
    # file: the clause changed in place, not the inserted lines (`astpatch diff` shows them all).
    assert report["file_lines"] == 4445
    assert report["firstlineno"] == 620 and report["getsourcelines_start"] == 620
    assert "except (TypeError, AttributeError, pickle.PicklingError, ValueError) as e:" in report["source"]
    assert 'if "pybind11" in str(e)' not in report["source"]
    assert "# Some configs options may not pickle." in report["source"]  # comments kept
    # Every other function of the module is upstream's, at upstream's lines, line table included;
    # only dumps (and the class and module that hold it) differ, and torch_key, whose returns pass
    # through astpatch.key_with_rules in place: same lines, other bytecode offsets.
    assert report["same_besides_dumps"] is True and report["count"] > 200
    assert report["only_upstream"] == report["only_patched"] == []
    assert report["differing"] == ["FxGraphCachePickler@498", "FxGraphCachePickler@498.dumps@620", "torch_key@719"]
    assert report["differing_lines"] == ["FxGraphCachePickler@498.dumps@620", "torch_key@719"]
    assert report["moved_lines"] == ["FxGraphCachePickler@498.dumps@620"]  # its inserted lines, past the end
    assert report["module_level_equal"] is True
    assert report["dumps_is_executed"] is True
    assert [f[1] for f in report["frames"]].count("dumps") == 1
    # A warm process: the code comes from the cache and libcst is never imported.
    assert report["libcst_imported"] is False
    assert {o["from_cache"] for o in report["outcomes"]} == {True}


def test_astpatch_diff_shows_exactly_upstreams_fix():
    result = subprocess.run([sys.executable, "-m", "astpatch", "diff", "--color=never", "torch._inductor.codecache"],
                            capture_output=True, text=True, env=clean_env())
    lines = check(result).splitlines()
    assert [line for line in lines if line.startswith(("-", "+")) and not line.startswith(("---", "+++"))] == [
        "-        except (TypeError, AttributeError, pickle.PicklingError) as e:",
        "+        except (TypeError, AttributeError, pickle.PicklingError, ValueError) as e:",
        "+        except RuntimeError as e:",
        "+            # pybind11 raises RuntimeError with message like:",
        '+            # "<pybind11_builtins... object at 0x...> is not pickleable."',
        '+            if "pybind11" in str(e) and "is not pickleable" in str(e):',
        '+                log.warning("Failed to pickle cache key", exc_info=True)',
        '+                raise BypassFxGraphCache("Failed to pickle cache key") from e',
        "+            raise",
        "-            return get_code_hash(_TORCH_PATH)",
        '+            return __import__("astpatch").key_with_rules(get_code_hash(_TORCH_PATH), "torch")',
        '-        return parutil.get_file_contents("torch/src_hash.txt").rstrip().encode("ascii")',
        '+        return __import__("astpatch").key_with_rules(parutil.get_file_contents("torch/src_hash.txt")'
        '.rstrip().encode("ascii"), "torch")',
    ]
    assert lines[2] == "@@ -624,10 +624,17 @@"


def test_torch_imported_before_install_gets_the_fix_on_the_live_function(tmp_path):
    from torch_probes import LATE

    report = run(LATE, str(tmp_path / "cache"))
    assert report["same_function"] is True
    assert report["raised"] == ["BypassFxGraphCache", "ValueError"]
    assert [o["rule"] for o in report["outcomes"]] == [PYBIND11_RULE, KEY_RULE, RULE_ID]
    assert [o["outcome"] for o in report["outcomes"]] == ["applied", "applied", "applied"]
    for outcome in report["outcomes"]:
        assert outcome["reason"].endswith("applied to the live function because torch._inductor.codecache was "
                                          "imported before astpatch.install()")


WHOLE_CHANGE = r'''
import json, sys, types
import astpatch
astpatch.install(rules=[sys.argv[1]], cache_dir=sys.argv[2])
import torch
import torch._dynamo.convert_frame as convert_frame

def f(x):
    return torch.sin(x) + x * 2

x = torch.randn(8)
compiled = torch.compile(f, backend="inductor")
helper = getattr(convert_frame, "_safe_builtins_dict", None)
method = convert_frame.GraphCaptureOutput.get_runtime_env
print(json.dumps({
    "outcomes": [[o.rule_id, o.module, o.status] for o in astpatch.applied() if o.module.startswith("torch._dynamo")],
    "helper_in_module": isinstance(helper, types.FunctionType) and helper.__module__ == convert_frame.__name__,
    "helper_file": helper.__code__.co_filename if helper else None,
    "method_calls_helper": "_safe_builtins_dict" in method.__code__.co_names,
    "method_file": method.__code__.co_filename,
    "wrapped": hasattr(method, "__wrapped__"),
    "helper_works": helper({"len": len, "x": (lambda: 0)}) == {"len": len} if helper else None,
    "compiled_equals_eager": bool(torch.allclose(compiled(x), f(x))),
}))
'''


def test_a_whole_upstream_change_with_a_module_level_helper_runs_in_real_torch(tmp_path):
    """pytorch#177558 (a new module-level helper and the method that calls it), made into a rule by
    `astpatch new --from-diff` from the pull request's diff, applied at import to torch 2.10."""
    from conftest import ROOT

    rules = tmp_path / "rules"
    made = subprocess.run([sys.executable, "-m", "astpatch", "new", "--from-diff",
                           str(ROOT / "tests" / "data" / "pytorch-177558.diff"), "--id", "torch-dynamo-safe-builtins",
                           "--gate", "torch>=2.10", "--upstream", "pytorch/pytorch#177558", "-o", str(rules)],
                          capture_output=True, text=True, env=clean_env(), timeout=300)
    check(made)
    report = run(WHOLE_CHANGE, str(rules), str(tmp_path / "cache"))
    assert report["outcomes"] == [["torch-dynamo-safe-builtins", "torch._dynamo.convert_frame", "applied"]]
    assert report["helper_in_module"] and report["method_calls_helper"] and not report["wrapped"]
    assert report["helper_file"].endswith("torch/_dynamo/convert_frame.py")
    assert report["method_file"].endswith("torch/_dynamo/convert_frame.py")
    assert report["helper_works"] is True
    assert report["compiled_equals_eager"] is True


# A rule that changes the code inductor generates: the wrapper module of every compile gets one
# more comment line (PythonWrapperCodegen.write_header runs for every CPU compile).
MARKER_RULE = """\
from astpatch import ApplyHunks, Hunk, Rule

RULE = Rule(
    id="test-inductor-wrapper-marker",
    summary="inductor's generated wrapper module gets a marker comment",
    module="torch._inductor.codegen.wrapper",
    target="PythonWrapperCodegen.write_header",
    edit=ApplyHunks(hunks=[Hunk(
        before=["                aten = torch.ops.aten"],
        after=["                # astpatch-marker", "                aten = torch.ops.aten"],
    )]),
    upstream="a test rule",
)
"""
MARKER_RULE_ID = "test-inductor-wrapper-marker"


def compiled(how: str, inductor_cache: Path, astpatch_cache: Path, *rules: Path) -> dict:
    """KEYED_COMPILE in a fresh interpreter, its compile caches in `inductor_cache`."""
    result = subprocess.run([sys.executable, "-c", KEYED_COMPILE, how, str(astpatch_cache), *map(str, rules)],
                            capture_output=True, text=True, env=inductor_env(str(inductor_cache)), timeout=900)
    report = json.loads(check(result).splitlines()[-1])
    assert report["torch_key_after_compile"] == report["torch_key"]  # the same before and after the compile
    assert report["codes"] == 1  # one graph, one wrapper module
    return report


def keyed_by(plain_key: str, rule_ids: list[str], *rule_files: Path) -> str:
    """torch_key() as astpatch.key_with_rules documents it: the SHA-256 of torch's own key and of
    the fingerprints (sorted) of the rules applied to torch."""
    from astpatch._model.rulefiles import builtin_rules_dir
    from astpatch._model.ruleset import load_rules

    def fail(message: str) -> None:
        raise AssertionError(message)

    rules = {r.id: r for r in load_rules([builtin_rules_dir(), *rule_files], fail)}
    digest = hashlib.sha256(bytes.fromhex(plain_key))
    for fingerprint in sorted(rules[i].fingerprint() for i in rule_ids):
        digest.update(b"\0astpatch\0" + fingerprint.encode("utf-8"))
    return digest.hexdigest()


def statuses(report: dict) -> dict[str, str]:
    return {o["rule"]: o["outcome"] for o in report["outcomes"]}


def test_a_rule_that_changes_generated_code_gets_its_own_compile_cache_entries(tmp_path):
    """Five processes share one TORCHINDUCTOR_CACHE_DIR (FX graph and AOTAutograd caches, local):
    A (astpatch, shipped rules) misses; B (and the marker rule) misses too, and its wrapper has the
    marker; C (B's rules) hits B's artifact, marker included; D (A's rules) hits A's, without it.
    Without the key rule B would be served A's artifact: the marker rule would not be in its code.

    E is torch without astpatch: on torch 2.10 its torch_key() differs from A's, because the
    shipped FX graph rules apply there (they change torch._inductor.codecache), so E misses too.
    """
    rule = tmp_path / "marker_rule.py"
    rule.write_text(MARKER_RULE)
    inductor, cache = tmp_path / "inductor", tmp_path / "astpatch"
    a = compiled("install", inductor, cache)
    b = compiled("install", inductor, cache, rule)
    c = compiled("install", inductor, cache, rule)
    d = compiled("install", inductor, cache)
    e = compiled("none", inductor, cache)

    fx_rules = [PYBIND11_RULE, RULE_ID]
    assert statuses(a) == statuses(d) == {PYBIND11_RULE: "applied", KEY_RULE: "applied", RULE_ID: "applied"}
    assert statuses(b) == statuses(c) == {**statuses(a), MARKER_RULE_ID: "applied"}
    assert e["outcomes"] is None and e["astpatch_imported"] is False
    assert e["torch_key"] != a["torch_key"] != b["torch_key"] != e["torch_key"]
    assert a["torch_key"] == d["torch_key"] == keyed_by(e["torch_key"], fx_rules)
    assert b["torch_key"] == c["torch_key"] == keyed_by(e["torch_key"], [*fx_rules, MARKER_RULE_ID], rule)

    assert [r["fxgraph"] for r in (a, b, c, d, e)] == [
        {"fxgraph_cache_miss": 1}, {"fxgraph_cache_miss": 1}, {"fxgraph_cache_hit": 1}, {"fxgraph_cache_hit": 1},
        {"fxgraph_cache_miss": 1}]
    # AOTAutograd's cache (on by default) is keyed by torch_key() too, and agrees.
    assert [r["autograd"] for r in (a, b, c, d, e)] == [
        {"autograd_cache_miss": 1, "autograd_cache_saved": 1}, {"autograd_cache_miss": 1, "autograd_cache_saved": 1},
        {"autograd_cache_hit": 1}, {"autograd_cache_hit": 1}, {"autograd_cache_miss": 1, "autograd_cache_saved": 1}]
    assert [r["marked"] for r in (a, b, c, d, e)] == [0, 1, 1, 0, 0]
    # The local caches hold one artifact per key: A's (D's), B's (C's) and E's.
    assert len(list((inductor / "fxgraph").glob("*/*"))) == 3
    assert len(list((inductor / "aotautograd").glob("*"))) == 3


def test_torch_imported_before_install_keys_its_compile_caches_by_the_rules(tmp_path):
    """torch and its codecache imported, torch_key() memoised, then install(): the live torch_key
    gets the key rule's code and its memoised value is dropped, so the process keys like one that
    installed astpatch first (B), and is served B's artifact, marker included."""
    rule = tmp_path / "marker_rule.py"
    rule.write_text(MARKER_RULE)
    inductor, cache = tmp_path / "inductor", tmp_path / "astpatch"
    b = compiled("install", inductor, cache, rule)
    late = compiled("late", inductor, cache, rule)

    assert b["fxgraph"] == {"fxgraph_cache_miss": 1} and b["marked"] == 1
    # The key memoised before install() is torch's own; the key after it is B's.
    assert late["key_before_install"] != b["torch_key"]
    assert late["torch_key"] == b["torch_key"]
    assert late["torch_key"] == keyed_by(late["key_before_install"], [PYBIND11_RULE, RULE_ID, MARKER_RULE_ID], rule)
    key_outcome = next(o for o in late["outcomes"] if o["rule"] == KEY_RULE)
    assert key_outcome["outcome"] == "applied"
    assert key_outcome["reason"].endswith("; applied to the live function because torch._inductor.codecache was "
                                          "imported before astpatch.install()")
    # The marker rule's module was not imported yet: its rule counted before the import, which applied it.
    assert late["wrapper_imported_before_install"] is False
    assert statuses(late)[MARKER_RULE_ID] == "applied"
    assert late["fxgraph"] == {"fxgraph_cache_hit": 1} and late["autograd"] == {"autograd_cache_hit": 1}
    assert late["marked"] == 1
