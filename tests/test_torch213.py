"""Real torch 2.13.0: upstream has the fix, so the rule steps aside and upstream's code runs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import check, clean_env, require_torch
from torch_probes import INSPECT, PICKLER

pytestmark = pytest.mark.torch213
RULE_ID = "torch-fxgraph-cache-key-valueerror"


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
    assert set(outcomes) == {RULE_ID, "torch-fxgraph-cache-key-pybind11-runtimeerror"}
    for outcome in outcomes.values():
        assert outcome["outcome"] == "already-fixed"
        assert outcome["version"] == "2.13.0+cpu"
    assert "already catches ValueError" in outcomes[RULE_ID]["reason"]
    assert "already catches RuntimeError" in outcomes["torch-fxgraph-cache-key-pybind11-runtimeerror"]["reason"]
    # Byte for byte upstream: every code object equals a compile of the installed file.
    assert report["same_code_objects"] is True
    assert report["differing"] == [] and report["differing_lines"] == []
    assert report["module_level_equal"] is True
    assert "CacheabilityValidator.bypass_for_pickle_error(e)" in report["source"]


def test_pickler_behaves_as_upstream_with_and_without_astpatch(tmp_path):
    with_astpatch = json.loads(check(run(PICKLER, "astpatch", str(tmp_path / "cache"))).splitlines()[-1])
    without = json.loads(check(run(PICKLER, "plain")).splitlines()[-1])
    assert with_astpatch["cycle"]["raised"] == without["cycle"]["raised"] == "BypassFxGraphCache"
    assert with_astpatch["keyerror"]["raised"] == "KeyError"
    assert [o["outcome"] for o in with_astpatch["outcomes"]] == ["already-fixed", "already-fixed"]
    assert with_astpatch["pybind11"]["raised"] == without["pybind11"]["raised"] == "BypassFxGraphCache"
    # The decision is cached too: a second process does not import libcst.
    again = json.loads(check(run(PICKLER, "astpatch", str(tmp_path / "cache"))).splitlines()[-1])
    assert again["libcst_imported"] is False
    assert again["outcomes"][0]["from_cache"] is True


def test_astpatch_list_says_already_fixed():
    result = subprocess.run([sys.executable, "-m", "astpatch", "list", "--json"], capture_output=True, text=True,
                            env=clean_env())
    rows = json.loads(check(result))
    assert {r["id"]: r["outcome"] for r in rows} == {
        RULE_ID: "already-fixed", "torch-fxgraph-cache-key-pybind11-runtimeerror": "already-fixed"}
