"""The code cache in fresh interpreters: a hit imports no libcst; the cache can be turned off.

Faults, invalidation and security are in the test_faults_*.py modules."""

from __future__ import annotations

import pytest

from scenario import Scenario

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
def scene(tmp_path):
    return Scenario(tmp_path)


def probe(scene: Scenario, **env: str) -> dict:
    """What PROBE reports, and its stderr."""
    result = scene.python(PROBE.format(rules=str(scene.rule), cache=str(scene.cache)), **env)
    return {**result.json(), "stderr": result.stderr}


def test_second_process_hits_the_cache_without_importing_libcst(scene):
    cold = probe(scene)
    assert cold == {"patched": True, "libcst": True, "outcomes": [["applied", False]], "stderr": ""}
    warm = probe(scene)
    assert warm == {"patched": True, "libcst": False, "outcomes": [["applied", True]], "stderr": ""}
    assert len(scene.entries()) == 1


def test_no_cache_setting(scene):
    assert probe(scene, ASTPATCH_NO_CACHE="1")["outcomes"] == [["applied", False]]
    assert probe(scene, ASTPATCH_NO_CACHE="1")["outcomes"] == [["applied", False]]
    assert not scene.cache.exists()
