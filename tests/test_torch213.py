"""Real torch 2.13.0: upstream has the fix, so the rule steps aside and upstream's code runs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import check, clean_env, require_torch
from torch_probes import INSPECT, KEYED_COMPILE, PICKLER, inductor_env

pytestmark = pytest.mark.torch213
RULE_ID = "torch-fxgraph-cache-key-valueerror"
PYBIND11_RULE = "torch-fxgraph-cache-key-pybind11-runtimeerror"
KEY_RULE = "torch-compile-caches-key-by-rules"


@pytest.fixture(autouse=True, scope="module")
def real_torch_213():
    require_torch("2.13.0")


def run(program: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", program, *args], capture_output=True, text=True,
                          env=clean_env(), timeout=900)


def test_rule_reports_already_fixed_and_upstreams_code_runs(tmp_path):
    result = run(INSPECT, str(tmp_path / "cache"))
    report = json.loads(check(result).splitlines()[-1])
    assert "AstpatchWarning" not in result.stderr
    outcomes = {o["rule"]: o for o in report["outcomes"]}
    assert set(outcomes) == {RULE_ID, PYBIND11_RULE, KEY_RULE}
    for outcome in (outcomes[RULE_ID], outcomes[PYBIND11_RULE]):
        assert outcome["outcome"] == "already-fixed"
        assert outcome["version"] == "2.13.0+cpu"
    assert "already catches ValueError" in outcomes[RULE_ID]["reason"]
    assert "already catches RuntimeError" in outcomes[PYBIND11_RULE]["reason"]
    # The rules target torch, so the key rule is in force: torch_key's returns pass through
    # astpatch.key_with_rules, which gives torch's own key back (no rule is applied to torch).
    assert outcomes[KEY_RULE]["outcome"] == "applied"
    # Byte for byte upstream besides that: every other code object equals a compile of the
    # installed file, and torch_key keeps its lines.
    assert report["same_code_objects"] is True
    assert report["differing"] == report["differing_lines"] == ["torch_key@933"]
    assert report["moved_lines"] == []
    assert report["module_level_equal"] is True
    assert "CacheabilityValidator.bypass_for_pickle_error(e)" in report["source"]


def test_pickler_behaves_as_upstream_with_and_without_astpatch(tmp_path):
    with_astpatch = json.loads(check(run(PICKLER, "astpatch", str(tmp_path / "cache"))).splitlines()[-1])
    without = json.loads(check(run(PICKLER, "plain")).splitlines()[-1])
    assert with_astpatch["cycle"]["raised"] == without["cycle"]["raised"] == "BypassFxGraphCache"
    assert with_astpatch["keyerror"]["raised"] == "KeyError"
    assert [[o["rule"], o["outcome"]] for o in with_astpatch["outcomes"]] == [
        [PYBIND11_RULE, "already-fixed"], [KEY_RULE, "applied"], [RULE_ID, "already-fixed"]]
    assert with_astpatch["pybind11"]["raised"] == without["pybind11"]["raised"] == "BypassFxGraphCache"
    # The decision is cached too: a second process does not import libcst.
    again = json.loads(check(run(PICKLER, "astpatch", str(tmp_path / "cache"))).splitlines()[-1])
    assert again["libcst_imported"] is False
    assert {o["from_cache"] for o in again["outcomes"]} == {True}


def test_astpatch_list_says_already_fixed():
    result = subprocess.run([sys.executable, "-m", "astpatch", "list", "--json"], capture_output=True, text=True,
                            env=clean_env())
    rows = json.loads(check(result))
    assert {r["id"]: r["outcome"] for r in rows} == {
        RULE_ID: "already-fixed", PYBIND11_RULE: "already-fixed", KEY_RULE: "applied"}
    assert next(r for r in rows if r["id"] == KEY_RULE)["key_carries"] == []  # no rule changes torch's code


def test_compile_caches_are_shared_with_torch_without_astpatch(tmp_path):
    """The shipped rules are already-fixed on torch 2.13, so no rule changes torch's code: with
    astpatch, torch_key() is torch's own, and a process without astpatch is served the artifacts
    a process with astpatch compiled (FX graph and AOTAutograd caches, local, in one directory)."""

    def compiled(how: str) -> dict:
        result = subprocess.run([sys.executable, "-c", KEYED_COMPILE, how, str(tmp_path / "astpatch")],
                                capture_output=True, text=True, env=inductor_env(str(tmp_path / "inductor")),
                                timeout=900)
        return json.loads(check(result).splitlines()[-1])

    with_astpatch = compiled("install")
    without = compiled("none")
    assert {o["rule"]: o["outcome"] for o in with_astpatch["outcomes"]} == {
        PYBIND11_RULE: "already-fixed", KEY_RULE: "applied", RULE_ID: "already-fixed"}
    assert without["outcomes"] is None and without["astpatch_imported"] is False
    assert with_astpatch["torch_key"] == with_astpatch["torch_key_after_compile"] == without["torch_key"]
    assert with_astpatch["fxgraph"] == {"fxgraph_cache_miss": 1}
    assert with_astpatch["autograd"] == {"autograd_cache_miss": 1, "autograd_cache_saved": 1}
    assert without["fxgraph"] == {"fxgraph_cache_hit": 1}
    assert without["autograd"] == {"autograd_cache_hit": 1}
    assert len(list((tmp_path / "inductor" / "fxgraph").glob("*/*"))) == 1
