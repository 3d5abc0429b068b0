"""The code cache in fresh interpreters: a hit imports no libcst; the cache can be turned off.

Faults, invalidation and security are in the test_faults_*.py modules."""

from __future__ import annotations

import json

import pytest

from conftest import PICKLER_SOURCE, RULE_FILE, check, clean_env, run_python

PROBE = '''
import json, sys, warnings
warnings.simplefilter("always")
import astpatch
astpatch.install(rules=[{rules!r}], cache_dir={cache!r})
import pickler
print(json.dumps({{
    "patched": "ValueError" in pickler.Pickler.dumps.__code__.co_names,
    "libcst": "libcst" in sys.modules,
    "outcomes": [(o.status, o.from_cache) for o in astpatch.applied()],
}}))
'''


@pytest.fixture
def project(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "pickler.py").write_text(PICKLER_SOURCE)
    rules = tmp_path / "rule.py"
    rules.write_text(RULE_FILE)
    cache = tmp_path / "cache"

    def run(*args: str, **env: str) -> dict:
        environment = clean_env(site=site, **env)
        result = run_python(PROBE.format(rules=str(rules), cache=str(cache)), *args, env=environment)
        out = check(result)
        data = json.loads(out.splitlines()[-1])
        data["stderr"] = result.stderr
        return data

    run.site, run.rules, run.cache = site, rules, cache  # type: ignore[attr-defined]
    return run


def entries(cache) -> list:
    return sorted(p for p in cache.iterdir() if p.suffix == ".astpatch")


def test_second_process_hits_the_cache_without_importing_libcst(project):
    cold = project()
    assert cold == {"patched": True, "libcst": True, "outcomes": [["applied", False]], "stderr": ""}
    warm = project()
    assert warm == {"patched": True, "libcst": False, "outcomes": [["applied", True]], "stderr": ""}
    assert len(entries(project.cache)) == 1


def test_no_cache_setting(project):
    assert project(ASTPATCH_NO_CACHE="1")["outcomes"] == [["applied", False]]
    assert project(ASTPATCH_NO_CACHE="1")["outcomes"] == [["applied", False]]
    assert not project.cache.exists()
