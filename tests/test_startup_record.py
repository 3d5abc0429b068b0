"""The start-up record: a process installs from what an earlier one decided while every file that
decision depends on is unchanged, and decides again, as without a record, after any change.

The oracle of each test is the same program run with a new cache directory (no index, no record):
what the rule set decides from the files as they are."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from astpatch._base.evidence import RACY_NS

from conftest import PICKLER_SOURCE, RULE_FILE, check
from scenario import Scenario

PROGRAM = '''
import json, sys, warnings
warnings.simplefilter("always")
import astpatch
with warnings.catch_warnings(record=True) as at_install:
    warnings.simplefilter("always")
    handle = astpatch.install(rules={rules!r}, cache_dir={cache!r})
recorded = "astpatch._model.ruleset" not in sys.modules
targets = sorted(m for m in handle.targets if not m.startswith("torch"))
{between}
with warnings.catch_warnings(record=True) as at_import:
    warnings.simplefilter("always")
    import pickler, picklex, second
print(json.dumps({{
    "recorded": recorded, "targets": targets,
    "patched": [m.__name__ for m in (pickler, picklex, second) if "ValueError" in m.Pickler.dumps.__code__.co_names],
    "outcomes": sorted([o.rule_id, o.module, o.status] for o in astpatch.applied()),
    "warnings": [str(w.message) for w in [*at_install, *at_import]],
}}))
'''

ON = RULE_FILE.replace('id="pickler-valueerror"', 'id="{rule_id}"').replace('module="pickler"', 'module="{module}"')

SECOND_RULES = ON.format(rule_id="second-valueerror", module="second")


def settle() -> None:
    """Wait until what was just written is older than the racy window (`evidence.RACY_NS`)."""
    time.sleep(RACY_NS / 1e9 + 0.1)


def scene(tmp_path: Path) -> Scenario:
    """Three target modules and a rule directory with one rule file, on `pickler`."""
    s = Scenario(tmp_path, rule_file=ON.format(rule_id="pickler-valueerror", module="pickler"), rule_dir=True,
                 cwd=tmp_path)
    s.write("picklex", PICKLER_SOURCE)
    s.write("second", PICKLER_SOURCE)
    (s.site / "second_rules.py").write_text(SECOND_RULES)
    return s


def run(s: Scenario, cache: Path | None = None, between: str = "", **env: str) -> dict:
    code = PROGRAM.format(rules=[str(s.rules)], cache=str(cache or s.cache), between=between)
    return json.loads(check(s.python(code, **env)).splitlines()[-1])


def recorded(s: Scenario) -> dict:
    """Run until a process installs from the record: the first writes the indexes, the next (the files
    settled) the record."""
    run(s)
    settle()
    first = run(s)
    assert not first["recorded"]
    data = run(s)
    assert data["recorded"], data
    return data


def as_without_record(s: Scenario, data: dict, *, targets: bool = True, **env: str) -> None:
    """`data` is what the program gives with no index and no record (a new cache, used once); not
    `targets` where entry points declare rules: with no index, install() knows theirs only at the first import."""
    fresh = run(s, s.tmp / f"fresh-{time.monotonic_ns()}", **env)
    ignored = {"recorded": None, **({} if targets else {"targets": None})}
    assert {**data, **ignored} == {**fresh, **ignored}


def test_a_settled_start_up_is_replayed_from_its_record(tmp_path):
    """The third process installs from the record (no rule set built at install()) and gives what the
    rule set gives: the same targets, the same patched module (a cache hit), the same outcomes."""
    s = scene(tmp_path)
    data = recorded(s)
    assert data["targets"] == ["pickler"] and data["patched"] == ["pickler"] and data["warnings"] == []
    assert sorted(p.name.split("-")[0] for p in s.cache.glob("*.index")) == ["entry", "rule", "start"]
    as_without_record(s, data)


def _edit_in_place(s: Scenario) -> None:
    with open(s.rule, "r+") as f:  # the same file (inode), new content: only its own status shows it
        f.write(ON.format(rule_id="pickler-valueerror", module="picklex"))
        f.truncate()


def _add(s: Scenario) -> None:
    (s.rule.parent / "picklex_rule.py").write_text(ON.format(rule_id="picklex-valueerror", module="picklex"))


def _remove(s: Scenario) -> None:
    s.rule.unlink()


def _open_to_others(s: Scenario) -> None:
    os.chmod(s.rule.parent, 0o777)


def _distribution(s: Scenario) -> None:
    dist = s.site / "seconddist-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: seconddist\nVersion: 1.0\n\n")
    (dist / "entry_points.txt").write_text("[astpatch.rules]\nsecond = second_rules\n")


CHANGES = {
    "a rule file edited in place to target another module": (_edit_in_place, {}, ["picklex"]),
    "a rule file added": (_add, {}, ["pickler", "picklex"]),
    "a rule file removed": (_remove, {}, []),
    "its directory opened to other users": (_open_to_others, {}, []),
    "a distribution with rules installed on the search path": (_distribution, {}, ["pickler", "second"]),
    "a rule disabled": (lambda s: None, {"ASTPATCH_DISABLE": "pickler-valueerror"}, []),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_any_change_it_depends_on_makes_the_next_start_up_decide_again(tmp_path, change):
    """Each change right after the record was written (its statuses racy, so the next process could not
    record them): the next process does not install from the record, and gives what the rule set gives."""
    s = scene(tmp_path)
    recorded(s)
    make, env, patched = CHANGES[change]
    make(s)
    data = run(s, **env)
    assert not data["recorded"] and data["patched"] == patched, data
    if change == "its directory opened to other users":
        assert any("not loaded because" in w and "other users can write" in w for w in data["warnings"]), data
    as_without_record(s, data, **env)


def _second_rules_retargeted(s: Scenario) -> None:
    with open(s.site / "second_rules.py", "r+") as f:  # in place: only the file's own status shows it
        f.write(ON.format(rule_id="second-valueerror", module="picklex"))
        f.truncate()


def test_a_start_up_with_a_distribution_of_rules_is_replayed_from_its_record(tmp_path):
    """A distribution that declares rules (the `astpatch.rules` entry points) is recorded with the
    entry-point index's stamp and its rule modules' statuses: the third process installs from the record,
    imports the distribution's rules only at the import of the module they target, and gives what the
    rule set gives. Its rule module edited in place (to target another module) makes the next process
    decide again."""
    s = scene(tmp_path)
    _distribution(s)
    data = recorded(s)
    assert data["targets"] == ["pickler", "second"] and data["patched"] == ["pickler", "second"], data
    assert data["warnings"] == []
    as_without_record(s, data, targets=False)
    _second_rules_retargeted(s)
    data = run(s)
    assert not data["recorded"] and data["patched"] == ["pickler", "picklex"], data
    as_without_record(s, data, targets=False)


def test_a_rule_file_changed_after_install_is_examined_at_the_import(tmp_path):
    """The record vouches for the files as install() found them; a rule file opened to other users between
    install() and the import of its module is reported at that import and not run, as without a record."""
    s = scene(tmp_path)
    recorded(s)
    data = run(s, between=f"import os; os.chmod({str(s.rule)!r}, 0o666)")
    assert data["recorded"] and data["targets"] == ["pickler"] and data["patched"] == []
    assert any("is not loaded because" in w and "other users can write" in w for w in data["warnings"]), data
    os.chmod(s.rule, 0o644)


def test_a_miss_builds_the_rule_set_the_record_stood_for(tmp_path):
    """With the cache entry gone, the module is rewritten: its rule file is executed at the import."""
    s = scene(tmp_path)
    recorded(s)
    for entry in s.entries():
        entry.unlink()
    data = run(s)
    assert data["recorded"] and data["patched"] == ["pickler"]
    assert data["outcomes"] == [["pickler-valueerror", "pickler", "applied"]] and s.entries()


def test_a_damaged_record_is_replaced_without_a_word(tmp_path):
    s = scene(tmp_path)
    recorded(s)
    (record,) = s.cache.glob("start-up-*.index")
    data = record.read_bytes()
    record.write_bytes(data[:-3] + b"xyz")
    again = run(s)
    assert not again["recorded"] and again["patched"] == ["pickler"] and again["warnings"] == []
    assert record.read_bytes() != data[:-3] + b"xyz"  # rewritten: the files had settled
    assert run(s)["recorded"]


def test_a_start_up_that_says_something_writes_no_record(tmp_path):
    """A note at install() (ASTPATCH_DISABLE naming no rule) is said by every process: none installs
    from a record, which would not say it."""
    s = scene(tmp_path)
    for attempt in range(2):
        data = run(s, ASTPATCH_DISABLE="no-such-rule")
        assert not data["recorded"], attempt
        assert any("ASTPATCH_DISABLE names 'no-such-rule'" in w for w in data["warnings"]), data
        settle()
    assert not list(s.cache.glob("start-up-*.index"))


def test_a_record_stands_for_its_rule_paths_wherever_the_program_runs(tmp_path):
    """The same program run in another directory installs from the same record: the working directory
    (sys.path's "") counts by the distributions in it, and there are none. With other rules it decides anew;
    with a distribution in that directory too."""
    s = scene(tmp_path)
    recorded(s)
    s.cwd = tmp_path / "elsewhere"
    s.cwd.mkdir()
    data = run(s)
    assert data["recorded"] and data["patched"] == ["pickler"]
    as_without_record(s, data)
    (s.cwd / "seconddist-1.0.dist-info").mkdir()
    ((s.cwd / "seconddist-1.0.dist-info") / "entry_points.txt").write_text("[astpatch.rules]\nsecond = second_rules\n")
    data = run(s)
    assert not data["recorded"] and data["patched"] == ["pickler", "second"]
    other = tmp_path / "other-rules"
    shutil.copytree(s.rule.parent, other)
    s.cwd, s.rules = tmp_path, other
    data = run(s)
    assert not data["recorded"] and data["patched"] == ["pickler"]
    assert len(list(s.cache.glob("start-up-*.index"))) == 1  # the others' were too recent to record
