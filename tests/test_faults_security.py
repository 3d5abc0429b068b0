"""Security of the cache and the rule files: nothing another user could have written is ever loaded."""

from __future__ import annotations

import importlib.util
import os
import py_compile
import shutil
import stat
from pathlib import Path

import pytest

import astpatch

from conftest import RULE_FILE
from scenario import PATCHED, UPSTREAM, Scenario

OTHER_UID = 65534  # nobody


def as_root():
    if os.geteuid() != 0:
        pytest.fail("this case changes a file's owner and must run as root (CI does); run it as root")


def test_the_cache_directory_and_entries_are_created_private(tmp_path):
    """astpatch creates its directory 0700 and its entries 0600."""
    s = Scenario(tmp_path)
    s.run().assert_patched()
    assert stat.S_IMODE(s.cache.stat().st_mode) == 0o700
    assert [stat.S_IMODE(e.stat().st_mode) for e in s.entries()] == [0o600]


# Where the cache path came from, and the advice that moves it: ASTPATCH_CACHE_DIR does not move a
# directory that the program gave install().
CHOSEN_BY = {"install(cache_dir=...)": "give install(cache_dir=...) a directory only you can write.",
             "ASTPATCH_CACHE_DIR": "set ASTPATCH_CACHE_DIR to a directory only you can write."}


def run_choosing(s: Scenario, chosen_by: str):  # type: ignore[no-untyped-def]
    """The fault matrix's program, its cache directory named as `chosen_by` says."""
    if chosen_by == "install(cache_dir=...)":
        return s.run()
    return s.run(install_args=f"rules=[{str(s.rules)!r}]", ASTPATCH_CACHE_DIR=str(s.cache))


@pytest.mark.parametrize("chosen_by", CHOSEN_BY)
@pytest.mark.parametrize("mode", [0o770, 0o777, 0o720], ids=["mode 770", "mode 777", "mode 720"])
def test_a_directory_others_can_write_is_not_used(tmp_path, mode, chosen_by):
    """A group- or world-writable cache directory: chmod is advised (it is the user's), and the setting that moves it."""
    s = Scenario(tmp_path)
    run_choosing(s, chosen_by).assert_patched(from_cache=False)
    os.chmod(s.cache, mode)
    run = run_choosing(s, chosen_by)
    run.assert_patched(from_cache=False)  # not from the cache, although an entry is there
    assert run.warnings == [f"astpatch: the cache directory {s.cache} is not used because other users can write to it "
                            f"(mode {stat.filemode(stat.S_IFDIR | mode)}). Modules are patched without caching. Make it "
                            f"private to your user (chmod 700 {s.cache}), or {CHOSEN_BY[chosen_by]}"]


@pytest.mark.parametrize("chosen_by", CHOSEN_BY)
def test_a_directory_owned_by_someone_else_is_not_used(tmp_path, chosen_by):
    """A cache directory owned by another user: no chmod advised (the user cannot), only another directory."""
    as_root()
    s = Scenario(tmp_path)
    run_choosing(s, chosen_by).assert_patched(from_cache=False)
    os.chown(s.cache, OTHER_UID, -1)
    os.chmod(s.cache, 0o777)  # writable by all too: still no chmod advice, for it is not this user's
    run = run_choosing(s, chosen_by)
    run.assert_patched(from_cache=False)
    advice = CHOSEN_BY[chosen_by]
    assert run.warnings == [f"astpatch: the cache directory {s.cache} is not used because it is owned by uid {OTHER_UID}, "
                            f"not by this user (uid 0). Modules are patched without caching. {advice[0].upper()}{advice[1:]}"]


def test_a_regular_file_at_the_cache_path(tmp_path):
    """A regular file of this user's at the cache path: removing it is advised, not chmod."""
    s = Scenario(tmp_path)
    s.cache.write_text("")
    os.chmod(s.cache, 0o600)
    run = s.run()
    run.assert_patched(from_cache=False)
    assert run.warnings == [f"astpatch: the cache directory {s.cache} is not used because it is a regular file, not a "
                            "directory. Modules are patched without caching. Remove it, or give install(cache_dir=...) a "
                            "directory only you can write."]


@pytest.mark.parametrize("case", ["link in a directory others can write", "link to a directory others can write"])
def test_a_symlinked_cache_directory_others_could_change(tmp_path, case):
    """A symbolic link as the cache path that others could repoint, or to a directory they can write: not used.

    A link in a directory that others can write could be repointed at any time; the message names why."""
    target = tmp_path / "real-cache"
    target.mkdir()
    links = tmp_path / "links"
    links.mkdir()
    open_to_all = case == "link in a directory others can write"
    os.chmod(links, 0o777 if open_to_all else 0o755)
    os.chmod(target, 0o700 if open_to_all else 0o777)
    s = Scenario(tmp_path)
    s.cache = links / "cache"
    s.cache.symlink_to(target)
    run = s.run()
    run.assert_patched(from_cache=False)
    reason = (f"the symbolic link {s.cache} can be repointed by another user: other users can write to {links} "
              "(mode drwxrwxrwx)" if open_to_all else "other users can write to it (mode drwxrwxrwx)")
    advice = f"Make it private to your user (chmod 700 {s.cache}), or " if not open_to_all else "Remove it, or "
    assert run.warnings == [f"astpatch: the cache directory {s.cache} is not used because {reason}. Modules are patched "
                            f"without caching. {advice}give install(cache_dir=...) a directory only you can write."]
    assert list(target.iterdir()) == []


@pytest.mark.parametrize("change", ["world-writable", "group-writable", "owned by someone else"])
def test_an_entry_others_could_have_written_is_not_loaded(tmp_path, change):
    """An entry that is group- or world-writable, or owned by another user."""
    s = Scenario(tmp_path)
    s.run().assert_patched(from_cache=False)
    (entry,) = s.entries()
    if change == "world-writable":
        os.chmod(entry, 0o666)
    elif change == "group-writable":
        os.chmod(entry, 0o620)
    else:
        as_root()
        os.chown(entry, OTHER_UID, -1)
    run = s.run()
    run.assert_patched(from_cache=False)
    assert len(run.warnings) == 1
    assert run.warnings[0].startswith(f"astpatch: the cache entry {entry} is not used because ")
    # It was replaced by a private entry that the next process trusts.
    (replaced,) = s.entries()
    assert stat.S_IMODE(replaced.stat().st_mode) == 0o600 and replaced.stat().st_uid == os.geteuid()
    s.run().assert_patched(from_cache=True)


# ---------------------------------------------------------------------------------------------
# Rule files: executed, so checked as the cache is, with root accepted as an owner too

KEEP = "keep rule files, and the directories that hold them, owned by you or root and writable only by their owner"


def rule_scene(tmp_path: Path, rule_dir: bool = False) -> tuple[Scenario, Path]:
    """The scene, its rule file also leaving a mark when executed: (scene, the mark)."""
    mark = tmp_path / "executed"
    s = Scenario(tmp_path, rule_file=f"{RULE_FILE}\nopen({str(mark)!r}, 'w').close()\n", rule_dir=rule_dir)
    return s, mark


RULE_PATHS = {
    "rule file world-writable": lambda s, tmp: (os.chmod(s.rule, 0o666), "rule file", s.rule,
                                                "other users can write to it (mode -rw-rw-rw-)"),
    "rule file group-writable": lambda s, tmp: (os.chmod(s.rule, 0o664), "rule file", s.rule,
                                                "other users can write to it (mode -rw-rw-r--)"),
    "rule file owned by someone else": lambda s, tmp: (as_root(), os.chown(s.rule, OTHER_UID, -1), "rule file", s.rule,
                                                       f"it is owned by uid {OTHER_UID}, not by this user (uid 0) or root"),
    "rule file in a directory others can write": lambda s, tmp: (
        os.chmod(s.rule.parent, 0o777), "rule file", s.rule,
        f"it is in a directory that another user can change: other users can write to {s.rule.parent} "
        "(mode drwxrwxrwx)"),
}


@pytest.mark.parametrize("case", RULE_PATHS)
def test_a_rule_file_others_could_have_written_is_not_executed(tmp_path, case):
    """A rule file group- or world-writable, owned by another user, or in a directory others can write: not executed."""
    (tmp_path / "scene").mkdir()
    s, mark = rule_scene(tmp_path / "scene")  # its own directory, which one case opens to all
    *_, kind, path, reason = RULE_PATHS[case](s, tmp_path)
    run = s.run()
    assert run["output"] == UPSTREAM and run["outcomes"] == [] and not mark.exists()
    message = f"astpatch: {kind} {path} is not loaded because {reason}; {KEEP}. The other rules still apply."
    assert run.warnings == [message]
    strict = s.run(ASTPATCH_STRICT="1")
    assert strict.returncode == 1 and f"astpatch._base.messages.AstpatchError: {message}" in strict.stderr
    assert not mark.exists()


@pytest.mark.parametrize("named_by", ["install(rules=...)", "ASTPATCH_RULES"])
def test_a_rule_directory_others_can_write_is_not_executed(tmp_path, named_by):
    """A rule directory that others can write, named by install(rules=...) or ASTPATCH_RULES: none of its files runs."""
    s, mark = rule_scene(tmp_path, rule_dir=True)
    assert s.rules is not None
    os.chmod(s.rules, 0o777)
    if named_by == "ASTPATCH_RULES":
        run = s.run(install_args=f"cache_dir={str(s.cache)!r}", ASTPATCH_RULES=str(s.rules))
    else:
        run = s.run()
    assert run["output"] == UPSTREAM and not mark.exists()
    assert run.warnings == [f"astpatch: rule directory {s.rules} is not loaded because other users can write to it "
                            f"(mode drwxrwxrwx); {KEEP}. The other rules still apply."]


def test_a_rule_file_behind_a_link_others_can_repoint(tmp_path):
    """A rule path that is a symbolic link in a directory others can write: not followed, not executed."""
    s, mark = rule_scene(tmp_path)
    links = tmp_path / "links"
    links.mkdir()
    os.chmod(links, 0o777)
    link = links / "rule.py"
    link.symlink_to(s.rule)
    run = s.run(install_args=s.install_args(link))
    assert run["output"] == UPSTREAM and not mark.exists()
    assert run.warnings == [f"astpatch: rule file {link} is not loaded because the symbolic link {link} can be repointed "
                            f"by another user: other users can write to {links} (mode drwxrwxrwx); {KEEP}. The other "
                            "rules still apply."]


def test_trusted_rule_paths_are_executed(tmp_path):
    """A private rule file reached through a link in a sticky directory (as /tmp), and a file in one: both run."""
    s, mark = rule_scene(tmp_path)
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    os.chmod(sticky, 0o1777)
    link = sticky / "link.py"
    link.symlink_to(s.rule)
    second = sticky / "second.py"
    second.write_text(RULE_FILE.replace("pickler-valueerror", "pickler-keyerror").replace('"ValueError"', '"KeyError"'))
    run = s.run(install_args=s.install_args(link, second))
    assert run["output"] == PATCHED and run["outcomes"] == [["applied", False]] * 2 and mark.exists()
    assert run.warnings == []


def test_rule_file_bytecode_others_could_have_written_is_not_read(tmp_path):
    """A rule file's current .pyc that others can write (forged: other code, the source's size and mtime): not read."""
    s, mark = rule_scene(tmp_path, rule_dir=True)
    forged_mark = tmp_path / "forged"
    forged = tmp_path / "forged.py"
    code = f"open({str(forged_mark)!r}, 'w').close()\n"
    size = s.rule.stat().st_size
    forged.write_text(code + "#" * (size - len(code) - 1) + "\n")
    assert forged.stat().st_size == size
    os.utime(forged, ns=(s.rule.stat().st_atime_ns, s.rule.stat().st_mtime_ns))
    pyc = Path(importlib.util.cache_from_source(str(s.rule)))
    py_compile.compile(str(forged), cfile=str(pyc), dfile=str(s.rule), doraise=True,
                       invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP)
    os.chmod(pyc, 0o666)
    run = s.run()
    run.assert_patched(from_cache=False)
    assert mark.exists() and not forged_mark.exists() and run.warnings == []
    # The oracle: a private .pyc is read (the forged code runs), so the check above is what kept it out.
    os.chmod(pyc, 0o644)
    (tmp_path / "cache2").mkdir(mode=0o700)
    trusted = s.run(install_args=s.install_args().replace(str(s.cache), str(tmp_path / "cache2")))
    assert forged_mark.exists() and trusted.warnings == [
        f"astpatch: rule file {s.rule} defines neither RULES nor RULE. The other rules still apply."]


def test_the_shipped_rules_are_trusted_as_the_package_is(tmp_path):
    """A copy of astpatch whose shipped rules directory others can write: its rules load all the same, no warning.

    Whoever can write them can write astpatch's own modules, which Python has already run."""
    from astpatch._model.rulefiles import builtin_rules_dir
    from astpatch._model.ruleset import load_rules

    s = Scenario(tmp_path, rule_file=None)
    package = s.site / "astpatch"
    shutil.copytree(Path(astpatch.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__", "rules"))
    shutil.copytree(builtin_rules_dir(), package / "rules", ignore=shutil.ignore_patterns("__pycache__"))
    os.chmod(package / "rules", 0o777)
    ran = s.python("import json, warnings; warnings.simplefilter('always'); import astpatch; "
                   "print(json.dumps([astpatch.__file__, [r.id for r in astpatch.install(cache_dir=False).rules]]))")
    where, ids = ran.json()
    assert where == str(package / "__init__.py") and "AstpatchWarning" not in ran.stderr
    assert ids == [r.id for r in load_rules([builtin_rules_dir()], pytest.fail)] != []
