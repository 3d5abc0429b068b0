"""The code cache, each case in fresh interpreters: hits, invalidation, and bad entries."""

from __future__ import annotations

import json
import os
import stat

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
        environment = clean_env(**env)
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), environment.get("PYTHONPATH", "")]))
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


def test_cache_directory_and_entries_are_private(project):
    project()
    assert stat.S_IMODE(project.cache.stat().st_mode) == 0o700
    assert stat.S_IMODE(entries(project.cache)[0].stat().st_mode) == 0o600


def test_an_edit_of_the_same_size_in_the_same_second_is_seen(project):
    project()
    path = project.site / "pickler.py"
    before = path.stat()
    # Same length, same mtime: only a hash of the source can tell.
    path.write_text(PICKLER_SOURCE.replace("(TypeError, AttributeError)", "(AttributeError, TypeError)"))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size
    after = project()
    assert after["outcomes"] == [["applied", False]]
    assert len(entries(project.cache)) == 2


def test_a_changed_rule_invalidates(project):
    project()
    project.rules.write_text(RULE_FILE.replace('add=("ValueError",)', 'add=("ValueError", "KeyError")'))
    assert project()["outcomes"] == [["applied", False]]
    assert project()["outcomes"] == [["applied", True]]


def test_optimisation_level_is_part_of_the_key(project):
    assert project()["outcomes"] == [["applied", False]]
    assert project("-O")["outcomes"] == [["applied", False]]
    assert project("-O")["outcomes"] == [["applied", True]]
    assert project()["outcomes"] == [["applied", True]]
    assert len(entries(project.cache)) == 2


@pytest.mark.parametrize("damage", ["truncated", "random", "empty", "altered-body", "directory"])
def test_a_damaged_entry_is_detected_ignored_and_replaced(project, damage):
    project()
    (entry,) = entries(project.cache)
    data = entry.read_bytes()
    if damage == "truncated":
        entry.write_bytes(data[: len(data) // 2])
    elif damage == "random":
        entry.write_bytes(os.urandom(len(data)))
    elif damage == "empty":
        entry.write_bytes(b"")
    elif damage == "altered-body":
        entry.write_bytes(data[:-20] + bytes(b ^ 0xFF for b in data[-20:]))
    else:
        entry.unlink()
        entry.mkdir()
    result = project()
    assert result["patched"] is True
    assert result["outcomes"] == [["applied", False]]
    assert f"astpatch: ignored the cache entry {entry}" in result["stderr"]
    if damage != "directory":
        assert project()["outcomes"] == [["applied", True]]  # replaced by a good one


def test_an_unwritable_cache_directory_degrades_to_no_cache(project, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    environment = {"ASTPATCH_CACHE_DIR": str(blocker / "cache")}
    probe = PROBE.replace("cache_dir={cache!r}", "")
    site = str(project.site)
    for _ in range(2):
        env = clean_env(**environment)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [site, env.get("PYTHONPATH", "")]))
        result = run_python(probe.format(rules=str(project.rules)), env=env)
        data = json.loads(check(result).splitlines()[-1])
        assert data["patched"] is True and data["outcomes"] == [["applied", False]]
        assert result.stderr.count("AstpatchWarning") == 1
        assert "cannot use the cache directory" in result.stderr and "Not a directory" in result.stderr


def test_a_cache_directory_others_can_write_is_not_used(project):
    project.cache.mkdir(mode=0o700)
    os.chmod(project.cache, 0o777)
    result = project()
    assert result["patched"] is True
    assert "is not used because other users can write to it" in result["stderr"]
    assert entries(project.cache) == []


def test_no_cache_setting(project):
    assert project(ASTPATCH_NO_CACHE="1")["outcomes"] == [["applied", False]]
    assert project(ASTPATCH_NO_CACHE="1")["outcomes"] == [["applied", False]]
    assert not project.cache.exists()
