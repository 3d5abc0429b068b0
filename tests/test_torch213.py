"""Real torch 2.13.0: upstream has the fix, so the rule steps aside and upstream's code runs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import check, clean_env
from torch_probes import INSPECT, PICKLER

pytestmark = pytest.mark.torch213
RULE_ID = "torch-fxgraph-cache-key-valueerror"


@pytest.fixture(autouse=True, scope="module")
def real_torch_213():
    from astpatch.distributions import installed_version

    version = installed_version("torch")
    if version is None or not version.startswith("2.13.0"):
        pytest.fail(f"these tests need torch 2.13.0 installed, found {version}; run `python3 tools/test.py`")


def run(program: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", program, *args], capture_output=True, text=True,
                          env=clean_env(), timeout=900)


def test_rule_reports_already_fixed_and_upstreams_code_runs(tmp_path):
    result = run(INSPECT, str(tmp_path / "cache"))
    report = json.loads(check(result).splitlines()[-1])
    assert "AstpatchWarning" not in result.stderr
    (outcome,) = report["outcomes"][:1]
    assert outcome["rule"] == RULE_ID
    assert outcome["outcome"] == "already-fixed"
    assert outcome["version"] == "2.13.0+cpu"
    assert "already catches ValueError" in outcome["reason"]
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
    assert with_astpatch["outcomes"][0]["outcome"] == "already-fixed"
    # The decision is cached too: a second process does not import libcst.
    again = json.loads(check(run(PICKLER, "astpatch", str(tmp_path / "cache"))).splitlines()[-1])
    assert again["libcst_imported"] is False
    assert again["outcomes"][0]["from_cache"] is True


def test_astpatch_list_says_already_fixed():
    result = subprocess.run([sys.executable, "-m", "astpatch", "list", "--json"], capture_output=True, text=True,
                            env=clean_env())
    rows = json.loads(check(result))
    (row,) = [r for r in rows if r["id"] == RULE_ID]
    assert row["state"] == "already-fixed"
