"""Invalidation: whatever changes, the code that runs is the right one, never a stale one."""

from __future__ import annotations

import os
import time

from conftest import PICKLER_SOURCE, RULE_FILE
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
    s.run(before="import astpatch._engine.cache as c; c.__version__ = '99.0'").assert_patched(from_cache=False)
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

    from astpatch._base.metadata import evidence_holds, find_version

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
