"""Invalidation: whatever changes, the code that runs is the right one, never a stale one."""

from __future__ import annotations

import marshal
import os
import shutil
import sys
import time
from importlib.util import MAGIC_NUMBER, cache_from_source, source_hash
from pathlib import Path

import pytest

from conftest import PICKLER_SOURCE, RULE_FILE, check
from scenario import PATCHED, UPSTREAM, Scenario, gated


def test_a_same_size_edit_in_the_same_second(tmp_path):
    """The target edited, same size, same mtime: seen by the source hash."""
    s = Scenario(tmp_path)
    s.run().assert_patched(from_cache=False)
    before = s.module.stat()
    # Upstream's fix lands with the same length: the rule must now report already-fixed.
    s.module.write_text(PICKLER_SOURCE.replace("(TypeError, AttributeError)", "(ValueError,AttributeError)"))
    os.utime(s.module, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert s.module.stat().st_size == before.st_size
    run = s.run()
    assert run["outcomes"] == [["already-fixed", False]]
    assert run["output"] == PATCHED and run["patched"] is True  # upstream's own code now handles it


def test_the_rules_edit_changed(tmp_path):
    """A rule's edit changes: its fingerprint is in the key."""
    s = Scenario(tmp_path)
    s.run().assert_patched(from_cache=False)
    s.rule.write_text(RULE_FILE.replace('add=("ValueError",)', 'add=("KeyError",)'))
    run = s.run()
    assert run["outcomes"] == [["applied", False]] and run["patched"] is False and run["output"] == UPSTREAM


def test_the_rules_gate_changed(tmp_path):
    """A rule's gate changes to exclude the installed version."""
    s = Scenario(tmp_path, gate="pickledist>=1", version="1.0")
    s.run().assert_patched(from_cache=False)
    s.rule.write_text(gated("pickledist>=2"))
    run = s.run()
    assert run["outcomes"] == [["not-applicable", False]] and run["output"] == UPSTREAM


def test_the_installed_distribution_changed(tmp_path):
    """The gated distribution's version changes with the source left alone."""
    s = Scenario(tmp_path, gate="pickledist<2", version="1.0")
    s.run().assert_patched(from_cache=False)
    s.install_dist("2.0")
    run = s.run()
    assert run["outcomes"] == [["not-applicable", False]] and run["output"] == UPSTREAM


def test_astpatch_upgraded(tmp_path):
    """A new astpatch version: its version is in the key."""
    s = Scenario(tmp_path)
    s.run().assert_patched(from_cache=False)
    s.run(before="import astpatch._base.cache as c; c.__version__ = '99.0'").assert_patched(from_cache=False)
    s.run().assert_patched(from_cache=True)
    assert len(s.entries()) == 2


def test_optimised_then_normal(tmp_path):
    """`python -O` then a normal run: the optimisation level is in the key."""
    s = Scenario(tmp_path)
    s.run("-O").assert_patched(from_cache=False)
    s.run().assert_patched(from_cache=False)
    s.run("-O").assert_patched(from_cache=True)
    s.run().assert_patched(from_cache=True)


def test_two_rule_sets_alternating_on_one_cache(tmp_path):
    """Two programs with different rules share a cache, alternately."""
    s = Scenario(tmp_path)
    other = tmp_path / "other_rule.py"
    other.write_text(RULE_FILE.replace("pickler-valueerror", "pickler-keyerror").replace('"ValueError"', '"KeyError"'))
    with_other = s.install_args(other)
    for round_ in range(2):
        s.run().assert_patched(from_cache=round_ == 1)
        run = s.run(install_args=with_other)
        assert run["patched"] is False and run["output"] == UPSTREAM
        assert run["outcomes"] == [["applied", round_ == 1]]
    assert len(s.entries()) == 2


CUSTOM_KIND_RULE = '''
from astpatch import Edit, EditResult, Rule


class AddByText(Edit):
    kind = "add-by-text"

    def params(self):
        return {}

    def apply(self, target):
        fixed = target.code.replace("(TypeError, AttributeError)", "(TypeError, AttributeError, ValueError)")
        return EditResult.applied_code(fixed, "added by text")


RULE = Rule(id="pickler-valueerror", summary="s", module="pickler", target="Pickler.dumps",
            edit=AddByText(), upstream="test fixture")
'''


def test_a_custom_edit_kinds_code_changed(tmp_path):
    """A custom edit kind's apply() changes, its params() the same: its code is in the key."""
    s = Scenario(tmp_path, rule_file=CUSTOM_KIND_RULE)
    s.run().assert_patched(from_cache=False)
    s.run().assert_patched(from_cache=True)
    s.rule.write_text(CUSTOM_KIND_RULE.replace("AttributeError, ValueError)", "AttributeError, KeyError)"))
    run = s.run()
    assert run["outcomes"] == [["applied", False]] and run["patched"] is False and run["output"] == UPSTREAM
    again = s.run()
    assert again["outcomes"] == [["applied", True]] and again["output"] == UPSTREAM
    assert len(s.entries()) == 2


def test_a_hit_checks_the_versions_without_looking_them_up(tmp_path):
    """A warm process verifies the gated distribution's version by the evidence recorded with the
    entry (a stat of its METADATA), without listing directories or reading metadata again."""
    s = Scenario(tmp_path, gate="pickledist<2", version="1.0")
    # A METADATA written within the last two seconds is no evidence yet (it could change again
    # within the file system's timestamp granularity): the version is then looked up at each hit.
    time.sleep(2.1)
    s.run().assert_patched(from_cache=False)
    no_lookups = ("import astpatch._base.metadata as m\n"
                  "def refuse(*args, **kwargs): raise AssertionError('a version lookup on a hit')\n"
                  "m.metadata_dir = m.find_version = refuse\n")
    s.run(before=no_lookups).assert_patched(from_cache=True)
    # The evidence no longer holds: the version is looked up again and decides.
    s.install_dist("2.0")
    run = s.run()
    assert run["outcomes"] == [["not-applicable", False]] and run["output"] == UPSTREAM


def test_the_gated_distribution_installed_later(tmp_path):
    """A rule gated on a distribution that is not installed, then is: "not installed" holds only
    while no directory on sys.path changes."""
    s = Scenario(tmp_path, gate="pickledist<2")
    first = s.run()
    assert first["outcomes"] == [["not-applicable", False]] and first["output"] == UPSTREAM
    assert s.run()["outcomes"] == [["not-applicable", True]]
    s.install_dist("1.0")
    s.run().assert_patched(from_cache=False)
    s.run().assert_patched(from_cache=True)


def test_a_distribution_rewritten_with_its_size_and_mtime_kept(tmp_path):
    """A METADATA rewritten to the same size with its mtime put back: its inode change time
    (which no program can set) is part of the evidence, so the version is looked up again."""
    s = Scenario(tmp_path, gate="pickledist<2", version="1.0")
    time.sleep(2.1)  # past the racy window (see below), so the entry's evidence is a stat
    s.run().assert_patched(from_cache=False)
    metadata = s.install_dist("1.0") / "METADATA"
    recorded = metadata.stat()
    s.install_dist("2.0")  # same size, same inode
    os.utime(metadata, ns=(recorded.st_atime_ns, recorded.st_mtime_ns))
    run = s.run()
    assert run["outcomes"] == [["not-applicable", False]] and run["output"] == UPSTREAM


def test_a_status_recorded_just_after_a_change_is_no_evidence(tmp_path):
    """Within the file system's timestamp granularity a file can change again with its size and
    times unchanged (git's "racy" entries): a METADATA changed less than two seconds before is
    vouched for by its version, looked up again at a hit, and later by its status."""
    import sys

    from astpatch._base.cache import evidence_holds
    from astpatch._base.metadata import find_version

    from conftest import install_dist

    install_dist(tmp_path, "racydist", "1.0")
    sys.path.insert(0, str(tmp_path))
    try:
        version, evidence = find_version("racydist")
        assert version == "1.0" and [e[0] for e in evidence] == ["version"] and evidence_holds(evidence)
        time.sleep(2.1)
        version, evidence = find_version("racydist")
        assert version == "1.0" and [e[0] for e in evidence] == ["stat"] and evidence_holds(evidence)
        install_dist(tmp_path, "racydist", "2.0")
        assert not evidence_holds(evidence)
    finally:
        sys.path.remove(str(tmp_path))


# The module's upstream code, whose untouched code objects the rewrite reuses and which is cached
# by the hash of the source, must be that source's. The target's before() is left alone by the
# rule, so what it returns tells whose code the patched module holds: the source's (NEW after an
# edit), an older .pyc's (OLD), or a .pyc written with marked code (MARKED).
OLD, NEW, MARKED = "line 9", "LINE 9", "mark 9"
EDITED = PICKLER_SOURCE.replace(f'"{OLD}"', f'"{NEW}"')

IMPORTED = """
import json, sys
{before}
import astpatch
astpatch.install({install_args})
import pickler
print(json.dumps({{"before": pickler.before(), "patched": "ValueError" in pickler.Pickler.dumps.__code__.co_names,
                   "outcomes": [[o.status, o.from_cache] for o in astpatch.applied()]}}))
"""


def imported(s: Scenario, *python_args: str, before: str = "", **env: str) -> dict:
    """What the target's before() returns once imported under astpatch, whether Pickler.dumps is
    patched, and the outcomes."""
    program = IMPORTED.format(before=before, install_args=s.install_args())
    return s.execute(*python_args, "-c", program, **env).json()


def applied(before: str, from_cache: bool) -> dict:
    return {"before": before, "patched": True, "outcomes": [["applied", from_cache]]}


def write_pyc(module: Path, kind: str, source: str | None = None, optimization: int | str = "",
              prefix: Path | None = None) -> Path:
    """Write the .pyc the import system reads for `module` (at `optimization`, under the pycache
    `prefix` if any): `kind` "timestamp", "checked hash" or "unchecked hash", its header for the
    module's present source, its code compiled from `source` (default: that source)."""
    data = module.read_bytes()
    code = compile(data if source is None else source, str(module), "exec", dont_inherit=True,
                   optimize=0 if optimization == "" else int(optimization))
    if kind == "timestamp":
        st = module.stat()
        header = (0).to_bytes(4, "little") + (int(st.st_mtime) & 0xFFFFFFFF).to_bytes(4, "little") + \
            (st.st_size & 0xFFFFFFFF).to_bytes(4, "little")
    else:
        header = (0b11 if kind == "checked hash" else 0b01).to_bytes(4, "little") + source_hash(data)
    saved = sys.pycache_prefix
    sys.pycache_prefix = str(prefix) if prefix is not None else None
    try:
        pyc = Path(cache_from_source(str(module), optimization=optimization))
    finally:
        sys.pycache_prefix = saved
    pyc.parent.mkdir(parents=True, exist_ok=True)
    pyc.write_bytes(MAGIC_NUMBER + header + marshal.dumps(code))
    return pyc


@pytest.mark.parametrize("producer", ["an import", "a live patch", "astpatch cache warm"])
def test_a_same_size_edit_in_the_same_second_with_the_old_pyc(tmp_path, producer):
    """The target edited, same size, same mtime, its old .pyc in __pycache__: the patched module runs the new
    source, also once the mtime moves and the .pyc is gone."""
    s = Scenario(tmp_path)
    pyc = write_pyc(s.module, "timestamp")  # as the import system writes it for this source
    before = s.module.stat()
    s.module.write_text(EDITED)
    os.utime(s.module, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert s.module.stat().st_size == before.st_size
    # The import system itself takes the .pyc for the new source: the trap.
    assert check(s.python("import pickler; print(pickler.before())")).strip() == OLD
    if producer == "an import":
        assert imported(s) == applied(NEW, from_cache=False)
    elif producer == "a live patch":
        first = imported(s, before="import pickler")  # its before() is what the import system gave
        assert first["patched"] is True and first["outcomes"] == [["applied", False]]
    else:
        assert "pickler: pickler-valueerror: applied" in check(s.astpatch("cache", "warm")).splitlines()
    assert imported(s) == applied(NEW, from_cache=True)
    os.utime(s.module)
    shutil.rmtree(pyc.parent)
    assert imported(s) == applied(NEW, from_cache=True)
    assert check(s.python("import pickler; print(pickler.before())")).strip() == NEW


def test_an_unchecked_hash_pyc_of_older_source(tmp_path):
    """An unchecked-hash .pyc (as some image builds make) of the target's older source: the patched module runs
    the source."""
    s = Scenario(tmp_path)
    write_pyc(s.module, "unchecked hash")
    s.module.write_text(EDITED)
    assert check(s.python("import pickler; print(pickler.before())")).strip() == OLD  # trusted by the import system
    assert imported(s) == applied(NEW, from_cache=False)


def test_a_checked_hash_pyc_of_older_source_with_checks_off(tmp_path):
    """A checked-hash .pyc of the target's older source, under --check-hash-based-pycs never: the patched module
    runs the source."""
    s = Scenario(tmp_path)
    write_pyc(s.module, "checked hash")
    s.module.write_text(EDITED)
    unchecked = ("--check-hash-based-pycs", "never")
    assert check(s.execute(*unchecked, "-c", "import pickler; print(pickler.before())")).strip() == OLD
    assert imported(s, *unchecked) == applied(NEW, from_cache=False)
    assert imported(s) == applied(NEW, from_cache=True)


@pytest.mark.parametrize("kind, python_args, optimization, prefix", [
    ("timestamp", (), "", False),
    ("checked hash", (), "", False),
    ("unchecked hash", (), "", False),
    ("checked hash", ("-O",), 1, False),
    ("timestamp", (), "", True),
], ids=["timestamp", "checked hash", "unchecked hash", "python -O", "pycache prefix"])
def test_a_pyc_of_the_source_is_used(tmp_path, kind, python_args, optimization, prefix):
    """A .pyc that holds the target's source's code (a timestamp one once the source has settled, a hash one
    of the source's hash; the optimisation level's, under the pycache prefix) is used, not compiled again."""
    s = Scenario(tmp_path)
    if kind == "timestamp":
        time.sleep(2.1)  # a source changed less than two seconds before its .pyc was written proves nothing
    # A .pyc that says it holds this source but whose code is marked: what runs shows where it came from.
    marked = PICKLER_SOURCE.replace(f'"{OLD}"', f'"{MARKED}"')
    env = {}
    if prefix:
        env["PYTHONPYCACHEPREFIX"] = str(tmp_path / "pycache")
    write_pyc(s.module, kind, marked, optimization, tmp_path / "pycache" if prefix else None)
    assert imported(s, *python_args, **env) == applied(MARKED, from_cache=False)
