"""The rule-file index: install() executes no rule file until one of its modules is imported, and a
program sees what it saw when every rule file was executed at install(), whatever changed since."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from astpatch._base import evidence
from astpatch._base.evidence import RACY_NS
from astpatch._base.store import Store
from astpatch._model import ruleindex, ruleset
from astpatch._model.rulefiles import builtin_rules_dir
from astpatch._model.ruleset import RuleSet, load_rules

from conftest import PICKLER_SOURCE, RULE_FILE, check
from scenario import Scenario

# A rule file that says when it runs. It prints: one that opened a file would be executed at every start.
MARKED = '''from astpatch import AddExceptTypes, Rule

print("executed {name}")
RULE = Rule(id="{rule_id}", summary="s", module="{module}", target="Pickler.dumps",
            edit=AddExceptTypes(add=("ValueError",), converts_to="Bypass"), upstream="test fixture")
'''

STEPS = '''
import json, sys, warnings
warnings.simplefilter("always")
import astpatch
with warnings.catch_warnings(record=True) as at_install:
    warnings.simplefilter("always")
    handle = astpatch.install(rules={rules!r}, cache_dir={cache!r})
targets = sorted(m for m in handle.targets if not m.startswith("torch"))
print("installed")
with warnings.catch_warnings(record=True) as at_import:
    warnings.simplefilter("always")
    {after}
print(json.dumps({{"targets": targets, "patched": [m for m in ("pickler", "picklex") if m in sys.modules
                                                   and "ValueError" in sys.modules[m].Pickler.dumps.__code__.co_names],
                  "at_install": [str(w.message) for w in at_install], "at_import": [str(w.message) for w in at_import],
                  "outcomes": [[o.rule_id, o.status] for o in astpatch.applied()]}}))
'''


def marked(name: str, module: str, rule_id: str | None = None) -> str:
    return MARKED.format(name=name, module=module, rule_id=rule_id or f"rule-{name}")


def steps(s: Scenario, rules: list[Path], after: str = "pass", cache: object = None, **env: str):
    """STEPS in the scene: its stdout lines before the last, and the JSON of the last."""
    code = STEPS.format(rules=[str(p) for p in rules], cache=str(s.cache) if cache is None else cache, after=after)
    result = s.python(code, **env)
    lines = check(result).splitlines()
    return lines[:-1], json.loads(lines[-1])


def settle() -> None:
    """Wait until what was just written is older than the racy window: its status alone then vouches for it."""
    time.sleep(RACY_NS / 1e9 + 0.1)


def test_install_executes_no_rule_file_until_one_of_its_modules_is_imported(tmp_path):
    """Thirty rule files: the first process executes them all at install() and writes the index; the next
    executes none at install(), none at the import of a module of theirs that the cache has (the index
    gives their fingerprints), and every one when asked for every rule (`handle.rules`); a third, once
    the files settled, too. Without the cache entry, the one whose module is imported runs at that import."""
    s = Scenario(tmp_path, rule_file=None)
    rules = tmp_path / "rules"
    rules.mkdir()
    names = [f"r{n:02}" for n in range(30)]
    for n, name in enumerate(names):
        module, rule_id = ("pickler", "pickler-valueerror") if n == 7 else (f"absent_{n}", None)
        (rules / f"{name}.py").write_text(marked(name, module, rule_id))
    everything = [f"executed {name}" for name in names]

    printed, first = steps(s, [rules], after="import pickler")
    assert printed == [*everything, "installed"] and first["patched"]
    assert len(list(s.cache.glob("rule-files-*.index"))) == 1

    later = 'import pickler\n    print("imported")\n    print(len(handle.rules))'
    for attempt in ("racy", "settled"):
        printed, data = steps(s, [rules], after=later)
        assert printed == ["installed", "imported", *everything, "33"], attempt  # 30 and the shipped ones
        assert data["patched"] and data["outcomes"] == [["pickler-valueerror", "applied"]], attempt
        assert data["targets"] == sorted(["pickler", *(f"absent_{n}" for n in range(30) if n != 7)])
        assert data["at_install"] == data["at_import"] == []
        settle()
    for entry in s.cache.glob("pickler-*"):
        entry.unlink()
    printed, data = steps(s, [rules], after=later)
    assert printed == ["installed", "executed r07", "imported", *(e for e in everything if e != "executed r07"), "33"]
    assert data["patched"] and data["outcomes"] == [["pickler-valueerror", "applied"]]


def program(s: Scenario, rules: list[Path], cache: object, **env: str | None):
    """The fault matrix's program with these rules and cache: what it printed, and its warnings."""
    run = s.run(install_args=f"rules={[str(p) for p in rules]!r}, cache_dir={cache!r}", **env)
    seen = {k: v for k, v in run.data.items() if k not in ("outcomes", "libcst")}  # a cache hit needs no libcst
    return run.returncode, seen, [o[0] for o in run.data.get("outcomes", [])], run.warnings, \
        [line for line in run.stderr.splitlines() if "AstpatchError" in line]


SECOND = RULE_FILE.replace("pickler-valueerror", "pickler-keyerror").replace('"ValueError"', '"KeyError"')

# Each case: the rule files beside the scene's rule (name -> text, after it) and the environment.
CASES = {
    "two rules on one function": ({"second.py": SECOND}, {}),
    "two rules with one id": ({"twin.py": RULE_FILE.replace('"ValueError"', '"KeyError"')}, {}),
    "two rules with one id, the second on another module": (
        {"twin.py": RULE_FILE.replace('module="pickler"', 'module="json"')}, {}),
    "a file with a rule whose id is taken, and another": ({"twin.py": RULE_FILE.replace("RULE = ", "TAKEN = ") + SECOND
                                                           .replace("RULE = ", "OTHER = ") + "RULES = [TAKEN, OTHER]\n"}, {}),
    "a file that fails to load": ({"broken.py": RULE_FILE.replace('    upstream="test fixture",\n', "")}, {}),
    "a file that exits": ({"exits.py": "import sys\nsys.exit(3)\n"}, {}),
    "a file that declares no rule": ({"empty.py": "X = 1\n"}, {}),
    "a file that imports more than astpatch": ({"more.py": "import os\n" + SECOND}, {}),
    "a file that opens a file": ({"opens.py": SECOND.replace('"KeyError"', 'open(__file__).close() or "KeyError"')}, {}),
    "a disabled rule": ({"second.py": SECOND}, {"ASTPATCH_DISABLE": "pickler-valueerror"}),
    "an unknown rule disabled": ({"second.py": SECOND}, {"ASTPATCH_DISABLE": "no-such-rule"}),
    "strict": ({"second.py": SECOND}, {"ASTPATCH_STRICT": "1"}),
    "strict, a file that fails to load": ({"broken.py": "RULES = [1]\n"}, {"ASTPATCH_STRICT": "1"}),
    "strict, two rules with one id": ({"twin.py": RULE_FILE}, {"ASTPATCH_STRICT": "1"}),
}


@pytest.mark.parametrize("case", CASES)
def test_the_index_changes_nothing_a_program_sees(tmp_path, case):
    """The oracle is the program without a cache, which executes every rule file at install(): the first
    process with a cache (which writes the index) and the next ones (which use it) print the same, with the
    same outcomes and the same warnings (or strict mode's same error, after which no index is written)."""
    files, env = CASES[case]
    s = Scenario(tmp_path, rule_dir=True)
    for name, text in files.items():
        (s.rule.parent / name).write_text(text)
    rules = [s.rule.parent]
    oracle = program(s, rules, False, **env)
    for attempt in ("first", "indexed", "indexed again"):
        assert program(s, rules, str(s.cache), **env) == oracle, attempt
    assert len(list(s.cache.glob("rule-files-*.index"))) == (oracle[0] == 0)


def test_a_rule_file_changed_added_removed_or_renamed_is_seen_by_the_next_process(tmp_path):
    """Each change to a rule directory, then one process with the index and, as the oracle, one without. The
    program imports `picklex` (a copy of `pickler`) first: a stale index would not have it intercepted."""
    s = Scenario(tmp_path, rule_file=None)
    s.write("picklex", PICKLER_SOURCE)
    rules = tmp_path / "rules"
    rules.mkdir()
    a = rules / "a.py"

    def same_as_without_index(targets: list[str]) -> None:
        _, indexed = steps(s, [rules], after="import picklex, pickler")
        _, oracle = steps(s, [rules], after="import picklex, pickler", cache=False)
        assert indexed == oracle
        assert indexed["targets"] == indexed["patched"] == targets

    a.write_text(marked("a", "pickler"))
    same_as_without_index(["pickler"])
    settle()
    same_as_without_index(["pickler"])  # the index rewritten with settled statuses
    a.write_text(marked("a", "picklex"))  # in place
    same_as_without_index(["picklex"])
    b = rules / "b.py"
    b.write_text(marked("b", "pickler"))
    same_as_without_index(["pickler", "picklex"])
    a.unlink()
    same_as_without_index(["pickler"])
    b.rename(rules / "c.py")
    same_as_without_index(["pickler"])
    settle()
    # The same size and modification time, other text: its change time tells.
    c = rules / "c.py"
    before = c.stat()
    c.write_text(c.read_text().replace('"pickler"', '"picklex"'))
    os.utime(c, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (c.stat().st_size, c.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    same_as_without_index(["picklex"])
    # The directory replaced by another one at its path.
    rules.rename(tmp_path / "old-rules")
    rules.mkdir()
    (rules / "d.py").write_text(marked("d", "pickler"))
    same_as_without_index(["pickler"])
    shutil.rmtree(rules)
    _, gone = steps(s, [rules], after="import pickler")
    assert gone["targets"] == gone["patched"] == []
    assert gone["at_install"] == [f"astpatch: rule path {rules} does not exist; its rules are not loaded."]


def test_a_rule_file_changed_after_install_runs_as_install_saw_it_or_as_executed(tmp_path):
    """A rule file changed between install() and its module's import: on a miss the file is executed
    then, and the entry written under its rules' real key, which the next process (index stale, file
    executed at install()) finds; a cache hit runs the rule as the index (so install()) saw it, as a
    program without the index, which executes every file at install(), would."""
    s = Scenario(tmp_path, rule_file=None)
    rules = tmp_path / "rules"
    rules.mkdir()
    rule = rules / "a.py"
    rule.write_text(marked("a", "pickler", "pickler-valueerror"))
    steps(s, [rules], after="import pickler")  # the index and an entry

    def change(old: str, new: str) -> str:
        return (f"text = open({str(rule)!r}).read()\n    open({str(rule)!r}, 'w').write(text.replace({old!r}, {new!r}))\n"
                "    import pickler\n    print(sorted(set(pickler.Pickler.dumps.__code__.co_names)"
                " & {'ValueError', 'KeyError', 'IndexError'}))")

    for entry in s.cache.glob("pickler-*"):
        entry.unlink()
    printed, miss = steps(s, [rules], after=change("ValueError", "KeyError"))
    assert printed == ["installed", "executed a", "['KeyError']"]
    assert miss["outcomes"] == [["pickler-valueerror", "applied"]]
    (entry,) = s.cache.glob("pickler-*")
    printed, later = steps(s, [rules], after="import pickler\n    print(pickler.Pickler.dumps.__code__.co_names)")
    assert printed[0] == "executed a" and "KeyError" in printed[-1] and later["outcomes"] == miss["outcomes"]
    assert list(s.cache.glob("pickler-*")) == [entry]  # found, not written again
    printed, hit = steps(s, [rules], after=change("KeyError", "IndexError"))
    assert printed == ["installed", "['KeyError']"] and hit["outcomes"] == miss["outcomes"]


READS_ENVIRONMENT = {
    "an environment variable": ('import os\nmodule = os.environ["TARGET"]\n', lambda s, name: {"TARGET": name}),
    "a file": ('module = open(__file__[:-3] + ".txt").read()\n',
               lambda s, name: (s.rule.with_suffix(".txt").write_text(name), {})[1]),
}


@pytest.mark.parametrize("source", READS_ENVIRONMENT)
def test_a_rule_file_whose_rules_depend_on_more_than_its_text_runs_at_every_install(tmp_path, source):
    """A rule file whose module comes from outside its text (it imports os, or opens a file): executed at each
    install(), so each process targets what that file says in that process, as without the index."""
    code, setting = READS_ENVIRONMENT[source]
    s = Scenario(tmp_path, rule_file=None)
    s.rule.write_text(marked("reads", "{module}", "pickler-valueerror").replace('"{module}"', "module")
                      .replace("print(", code + "print("))
    for name in ("pickler", "json", "pickler"):
        env = setting(s, name)
        printed, data = steps(s, [s.rule], after="import pickler", **env)
        _, oracle = steps(s, [s.rule], after="import pickler", cache=False, **env)
        assert printed == ["executed reads", "installed"] and data == oracle
        assert data["targets"] == [name] and data["patched"] == (["pickler"] if name == "pickler" else [])


def test_a_broken_rule_file_is_reported_at_every_install(tmp_path):
    """A file that fails to load is executed, and reported, at each install(), index or not; the others are not."""
    s = Scenario(tmp_path, rule_file=None)
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "good.py").write_text(marked("good", "pickler", "pickler-valueerror"))
    (rules / "broken.py").write_text('print("executed broken")\nRULES = [1]\n')
    message = (f"astpatch: rule file {rules / 'broken.py'}: 1 is not an astpatch.Rule. The other rules still apply.")
    for attempt in ("first", "indexed"):
        printed, data = steps(s, [rules])
        assert printed == (["executed broken", "executed good", "installed"] if attempt == "first"
                           else ["executed broken", "installed"])
        assert data["at_install"] == [message] and data["targets"] == ["pickler"]


def test_an_indexed_rule_file_that_fails_later_is_reported_when_its_module_is_imported(tmp_path):
    """A rule file that loaded when it was indexed, whose text did not change, and that is no longer to be
    executed (its real directory became writable by others): reported at the import of its module, where
    strict mode raises; without an index, at install(), as before."""
    s = Scenario(tmp_path, rule_file=None)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o755)
    (elsewhere / "real.py").write_text(RULE_FILE)
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "linked.py").symlink_to(elsewhere / "real.py")
    assert steps(s, [rules], after="import pickler")[1]["patched"]
    os.chmod(elsewhere, 0o775)
    message = (f"astpatch: rule file {rules / 'linked.py'} is not loaded because it is in a directory that another "
               f"user can change: other users can write to {os.path.realpath(elsewhere)} (mode drwxrwxr-x); keep rule "
               "files, and the "
               "directories that hold them, owned by you or root and writable only by their owner. The other rules "
               "still apply.")
    _, indexed = steps(s, [rules], after="import pickler")
    assert (indexed["at_install"], indexed["at_import"], indexed["patched"]) == ([], [message], [])
    _, oracle = steps(s, [rules], after="import pickler", cache=False)
    assert (oracle["at_install"], oracle["at_import"], oracle["patched"]) == ([message], [], [])
    strict = s.python(STEPS.format(rules=[str(rules)], cache=str(s.cache), after="import pickler"), ASTPATCH_STRICT="1")
    assert strict.returncode == 1 and strict.stdout.splitlines() == ["installed"]
    assert f"astpatch._base.messages.AstpatchError: {message}" in strict.stderr


def test_a_rule_file_named_by_itself_is_examined_at_every_install(tmp_path):
    """A rule file named by itself (not in a named directory) that the index vouches for: still examined at
    install(), as executing it would be; in a directory that became writable by others, reported there."""
    s = Scenario(tmp_path, rule_file=None)
    own = tmp_path / "own"
    own.mkdir(mode=0o755)
    rule = own / "rule.py"
    rule.write_text(marked("rule", "pickler", "pickler-valueerror"))
    assert steps(s, [rule], after="import pickler")[1]["patched"] == ["pickler"]
    assert steps(s, [rule], after="import pickler")[0] == ["installed"]  # a cache hit: not executed
    os.chmod(own, 0o775)
    _, indexed = steps(s, [rule], after="import pickler")
    _, oracle = steps(s, [rule], after="import pickler", cache=False)
    assert indexed == oracle and indexed["patched"] == [] and len(indexed["at_install"]) == 1
    assert indexed["at_install"][0].startswith(f"astpatch: rule file {rule} is not loaded because it is in a "
                                               "directory that another user can change")


@pytest.mark.parametrize("cache", ["off", "read-only"])
def test_without_a_writable_cache_every_rule_file_is_executed_at_install(tmp_path, cache):
    """The cache off, or a read-only one: no index is read or written, without a word; each process executes
    every rule file at install(), as before the index."""
    s = Scenario(tmp_path, rule_file=None)
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "a.py").write_text(marked("a", "pickler", "pickler-valueerror"))
    s.cache.mkdir()
    code = STEPS.format(rules=[str(rules)], cache=False if cache == "off" else str(s.cache), after="import pickler")
    for attempt in ("first", "second"):
        result = s.execute("-c", code, read_only=(s.cache,) if cache == "read-only" else ())
        lines = check(result).splitlines()
        assert lines[:-1] == ["executed a", "installed"], attempt
        data = json.loads(lines[-1])
        assert data["patched"] and data["at_install"] == [], attempt
    assert list(s.cache.iterdir()) == []


def test_an_index_others_could_have_written_is_not_used(tmp_path):
    """A group-writable rule-file index: not used (one warning), the files executed, a private index written."""
    s = Scenario(tmp_path, rule_file=None)
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "a.py").write_text(marked("a", "pickler", "pickler-valueerror"))
    steps(s, [rules])
    (index,) = s.cache.glob("rule-files-*.index")
    os.chmod(index, 0o620)
    printed, data = steps(s, [rules])
    assert printed == ["executed a", "installed"]
    assert data["at_install"] == [
        f"astpatch: the rule-file index {index} is not used because other users can write to it (mode -rw--w----); "
        "the rule files are executed instead. Delete it, or run `astpatch cache clear`."]
    assert index.stat().st_mode & 0o777 == 0o600
    assert steps(s, [rules]) == (["installed"], {**data, "at_install": []})


@pytest.mark.parametrize("damage", ["truncated", "a byte altered", "a FIFO"])
def test_a_damaged_index_is_replaced_without_a_word(tmp_path, damage):
    """A damaged rule-file index: the files are executed as without one, silently, and the index rewritten."""
    s = Scenario(tmp_path, rule_file=None)
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "a.py").write_text(marked("a", "pickler", "pickler-valueerror"))
    _, first = steps(s, [rules], after="import pickler")
    (index,) = s.cache.glob("rule-files-*.index")
    data = index.read_bytes()
    index.unlink()
    if damage == "truncated":
        index.write_bytes(data[: len(data) // 2])
    elif damage == "a byte altered":
        index.write_bytes(data[:-9] + bytes([data[-9] ^ 1]) + data[-8:])
    else:
        os.mkfifo(index)
    index.chmod(0o600)
    printed, damaged = steps(s, [rules], after="import pickler")
    assert (printed, damaged) == (["executed a", "installed"], first)
    assert index.is_file()  # rewritten (a regular file again)
    assert steps(s, [rules], after="import pickler") == (["installed"], first)  # a cache hit: not executed


# ---------------------------------------------------------------------------------------------
# The rule set with pending files, in this process

def fail(message: str) -> None:
    raise AssertionError(message)


def counting(monkeypatch) -> list[str]:  # type: ignore[no-untyped-def]
    """The rule files executed from now on, in order."""
    executed: list[str] = []
    for module in (ruleset, ruleindex):
        original = module.load_rule_file
        monkeypatch.setattr(module, "load_rule_file",
                            lambda path, *args, original=original: executed.append(os.path.basename(path))
                            or original(path, *args))
    return executed


def indexed_set(store: Store, paths: list[str], disabled: frozenset[str] = frozenset()) -> RuleSet:
    index = ruleindex.RuleIndex(store, paths, fail)
    rules = RuleSet(fail, disabled)
    rules.load(paths, index)
    index.save()
    return rules


def test_pending_rule_files_keep_the_load_order(tmp_path, monkeypatch):
    """The shipped rules, indexed: none is executed until their module is asked for, and they come in the
    order in which executing them all at once puts them (the key rule after the rule that put it in force)."""
    oracle = [r.id for r in load_rules([builtin_rules_dir()], fail)]
    store = Store(str(tmp_path / "cache"))
    indexed_set(store, [builtin_rules_dir()])
    executed = counting(monkeypatch)
    rules = indexed_set(store, [builtin_rules_dir()])
    assert executed == [] and rules.modules() == {"torch._inductor.codecache"}
    assert [r.id for r in rules.for_module("torch._inductor.codecache")] == oracle
    assert len(executed) == 3 and [r.id for r in rules.rules] == oracle


KEY = '''from astpatch import KeyWithRules, Rule

RULE = Rule(id="fakepkg-key", summary="s", module="fakepkg.keys", target="key", edit=KeyWithRules(package="fakepkg"),
            upstream="test fixture")
'''

ON = '''from astpatch import AddExceptTypes, Rule

RULE = Rule(id="on-{name}", summary="s", module="{module}", target="f",
            edit=AddExceptTypes(add=("ValueError",), converts_to="Bypass"),
            upstream="test fixture")
'''


@pytest.mark.parametrize("files", [["key"], ["key", "fakepkg.work"], ["fakepkg.work", "key"],
                                   ["fakepkg2.work", "key"], ["key", "fakepkg", "fakepkg.deep.er"]])
@pytest.mark.parametrize("disabled", [frozenset(), frozenset({"on-1"})])
def test_a_pending_key_rule_is_in_force_as_when_executed(tmp_path, monkeypatch, files, disabled):
    """A key rule's file pending: it is in force exactly when executing every file says so, in the same place."""
    rules = tmp_path / "rules"
    rules.mkdir()
    for n, module in enumerate(files):
        (rules / f"{n}.py").write_text(KEY if module == "key" else ON.format(name=n, module=module))
    eager = RuleSet(fail, disabled)
    eager.load([str(rules)])
    store = Store(str(tmp_path / "cache"))
    indexed_set(store, [str(rules)], disabled)
    executed = counting(monkeypatch)
    pending = indexed_set(store, [str(rules)], disabled)
    assert executed == [] and pending.modules() == eager.modules()
    for module in sorted(eager.modules()):  # a cache key's view: executes no file
        assert [(r.id, r.fingerprint()) for r in pending.keyed_for_module(module)] == [
            (r.id, r.fingerprint()) for r in eager.for_module(module)]
    assert executed == []
    for module in sorted(eager.modules()):
        assert [r.id for r in pending.for_module(module)] == [r.id for r in eager.for_module(module)]
    assert [r.id for r in pending.rules] == [r.id for r in eager.rules]


def test_a_change_within_the_timestamp_granularity_is_seen_by_the_content(tmp_path, monkeypatch):
    """A file system too coarse to see a change in a file's status: while the status is recent (racy), the
    index compares the content; once settled, it records the status alone (and the index is rewritten)."""
    rules = tmp_path / "rules"
    rules.mkdir()
    rule = rules / "a.py"
    rule.write_text(ON.format(name="a", module="first"))
    real = evidence.file_status
    coarse = {str(rule): real(str(rule)), str(rules): real(str(rules))}
    monkeypatch.setattr(evidence, "file_status", lambda path: coarse[path] if path in coarse else real(path))
    monkeypatch.setattr(ruleindex, "file_status", evidence.file_status)
    store = Store(str(tmp_path / "cache"))
    assert indexed_set(store, [str(rules)]).modules() == {"first"}
    rule.write_text(ON.format(name="a", module="other"))  # the same size, and the same status
    assert indexed_set(store, [str(rules)]).modules() == {"other"}  # its digest differs
    (index,) = (tmp_path / "cache").glob("rule-files-*.index")
    racy = index.read_bytes()
    later = time.time_ns() + RACY_NS + 1
    monkeypatch.setattr(time, "time_ns", lambda: later)
    assert indexed_set(store, [str(rules)]).modules() == {"other"}
    assert index.read_bytes() != racy  # settled: the status alone vouches for the file now
    rule.write_text(ON.format(name="a", module="third"))  # unseen, as git's settled entries
    assert indexed_set(store, [str(rules)]).modules() == {"other"}
