"""Rule faults: one clear message each, and a traceback into the program only in strict mode."""

from __future__ import annotations

import os
import signal
import stat
from pathlib import Path

import pytest

from conftest import RULE_FILE, install_dist
from scenario import PATCHED, UPSTREAM, Scenario

RAISING_RULE = '''
from astpatch import Edit, Rule

class Raises(Edit):
    kind = "raises"
    def params(self):
        return {}
    def apply(self, target):
        raise RuntimeError("the edit broke")

RULE = Rule(id="pickler-valueerror", summary="s", module="pickler", target="Pickler.dumps",
            edit=Raises(), upstream="test fixture")
'''


def test_an_edit_that_raises(tmp_path):
    """A rule whose edit raises."""
    s = Scenario(tmp_path, rule_file=RAISING_RULE)
    run = s.run()
    assert run["output"] == UPSTREAM and run["outcomes"] == [["failed", False]]
    assert run.warnings == [
        "astpatch: rule pickler-valueerror was not applied to pickler: the edit raises raised RuntimeError: the edit "
        "broke. pickler is imported without this fix. Run `astpatch list` to see every rule's state, update "
        "astpatch, or set ASTPATCH_DISABLE=pickler-valueerror to turn the rule off."]
    strict = s.run(ASTPATCH_STRICT="1")
    assert strict.returncode == 1
    assert "astpatch._base.messages.AstpatchError: astpatch: rule pickler-valueerror was not applied" in strict.stderr


def test_a_rule_file_with_a_missing_field(tmp_path):
    """A rule file whose Rule lacks `upstream`."""
    s = Scenario(tmp_path, rule_file=RULE_FILE.replace('    upstream="test fixture",\n', ""))
    run = s.run()
    assert run["output"] == UPSTREAM and run["outcomes"] == []
    assert run.warnings == [
        f"astpatch: rule file {s.rule} failed to load: TypeError: Rule.__init__() missing 1 required keyword-only "
        "argument: 'upstream'. The other rules still apply."]


def test_a_rule_file_with_a_wrong_field(tmp_path):
    """A rule file whose Rule has a target that is not a dotted name."""
    s = Scenario(tmp_path, rule_file=RULE_FILE.replace('target="Pickler.dumps"', 'target="Pickler dumps"'))
    run = s.run()
    assert run["output"] == UPSTREAM
    assert run.warnings == [
        f"astpatch: rule file {s.rule} failed to load: RuleError: rule 'pickler-valueerror': target must be a dotted "
        "name, got 'Pickler dumps'. The other rules still apply."]


EXITS = {"sys.exit(3)": "3", "sys.exit('bye')": "'bye'", "raise SystemExit": "None"}


@pytest.mark.parametrize("call", EXITS)
def test_a_rule_file_that_calls_sys_exit(tmp_path, call):
    """A rule file that calls sys.exit(): that file fails to load, named, and the rest applies; the program goes on."""
    s = Scenario(tmp_path)
    exiting = tmp_path / "exiting.py"
    exiting.write_text(f"import sys\n{call}\n")
    run = s.run(install_args=s.install_args(exiting, s.rule))
    run.assert_patched(from_cache=False)
    message = (f"astpatch: rule file {exiting} failed to load: SystemExit: {EXITS[call]} (a rule file must not exit "
               "the program). The other rules still apply.")
    assert run.warnings == [message]
    strict = s.run(install_args=s.install_args(exiting, s.rule), ASTPATCH_STRICT="1")
    assert strict.returncode == 1 and f"astpatch._base.messages.AstpatchError: {message}" in strict.stderr


def test_a_rule_file_interrupted_by_ctrl_c(tmp_path):
    """Ctrl-C while a rule file runs: KeyboardInterrupt reaches the program (it is the user's, not a rule's error)."""
    s = Scenario(tmp_path)
    interrupted = tmp_path / "interrupted.py"
    interrupted.write_text("raise KeyboardInterrupt\n")
    run = s.run(install_args=s.install_args(interrupted, s.rule))
    assert run.returncode == -signal.SIGINT, (run.returncode, run.stderr)  # how CPython ends on an uncaught Ctrl-C
    assert run.stderr.rstrip().endswith("KeyboardInterrupt") and run.warnings == [] and run.stdout == ""


def test_two_rules_on_one_function_apply_in_order(tmp_path):
    """Two rule files edit the same function: applied in load order, both reported."""
    s = Scenario(tmp_path)
    second = tmp_path / "second.py"
    second.write_text(RULE_FILE.replace("pickler-valueerror", "pickler-keyerror").replace('"ValueError"', '"KeyError"'))
    run = s.run(install_args=s.install_args(s.rule, second))
    assert run["output"] == PATCHED and run["outcomes"] == [["applied", False], ["applied", False]]
    assert run["reasons"] == ["added ValueError to `except (TypeError, AttributeError)`",
                              "added KeyError to `except (TypeError, AttributeError, ValueError)`"]


def test_two_rules_with_one_id(tmp_path):
    """Two rule files declare the same rule id: the first wins, one message names both files."""
    s = Scenario(tmp_path)
    twin = tmp_path / "twin.py"
    twin.write_text(RULE_FILE.replace('"ValueError"', '"KeyError"'))
    run = s.run(install_args=s.install_args(s.rule, twin))
    run.assert_patched(from_cache=False)
    assert run.warnings == [f"astpatch: rule id 'pickler-valueerror' from {twin} is already defined by {s.rule}; "
                            "the first one is used."]


def test_a_gate_naming_a_distribution_that_is_not_installed(tmp_path):
    """A gate on a distribution that is not installed (a typo, often)."""
    s = Scenario(tmp_path, gate="pickle-dist>=1")
    run = s.run()
    assert run["output"] == UPSTREAM and run["outcomes"] == [["not-applicable", False]]
    assert run.warnings == [
        "astpatch: rule pickler-valueerror is not applied to pickler: pickle-dist is not installed (gate "
        "pickle-dist>=1). Check the distribution name in the rule's gate."]


def test_a_rule_path_that_does_not_exist(tmp_path):
    """install(rules=[...]) names a path that does not exist."""
    s = Scenario(tmp_path)
    missing = tmp_path / "nowhere"
    run = s.run(install_args=s.install_args(missing, s.rule))
    run.assert_patched()
    assert run.warnings == [f"astpatch: rule path {missing} does not exist; its rules are not loaded."]


KIND_WITHOUT_PARAMS = '''
from astpatch import Edit, EditResult, Rule

class NoParams(Edit):
    kind = "no-params"
    def apply(self, target):
        return EditResult.already_fixed("nothing to do")

RULE = Rule(id="pickler-custom", summary="s", module="pickler", target="Pickler.dumps",
            edit=NoParams(), upstream="test fixture")
'''

BAD_PARAMS = {
    "returns a list": ("ListParams", "return ['add', 'ValueError']",
                       "returned list, not a dict of its parameters as plain data"),
    "raises": ("RaisingParams", "raise KeyError('add')",
               "raised KeyError: 'add'; an edit kind must return its parameters as a dict of plain data"),
}


def bad_params_kind(name: str, body: str) -> str:
    return KIND_WITHOUT_PARAMS.replace("NoParams", name).replace(
        "    def apply", f"    def params(self):\n        {body}\n    def apply")


def test_an_edit_kind_without_params(tmp_path):
    """A rule file whose edit kind does not define params(): that file fails to load, named, and the rest applies."""
    s = Scenario(tmp_path)
    custom = tmp_path / "custom.py"
    custom.write_text(KIND_WITHOUT_PARAMS)
    run = s.run(install_args=s.install_args(custom, s.rule))
    run.assert_patched(from_cache=False)
    (message,) = run.warnings
    # Python words the abstract method differently across versions; the class and the method are named.
    start = f"astpatch: rule file {custom} failed to load: TypeError: Can't instantiate abstract class NoParams "
    end = ". The other rules still apply."
    assert message.startswith(start) and message.endswith(end), message
    assert "params" in message[len(start):-len(end)] and "update astpatch" not in message


@pytest.mark.parametrize("case", BAD_PARAMS)
def test_an_edit_kind_whose_params_are_not_a_dict(tmp_path, case):
    """A rule file whose edit kind's params() gives no dict: that file fails to load, named, and the rest applies."""
    name, body, problem = BAD_PARAMS[case]
    s = Scenario(tmp_path)
    custom = tmp_path / "custom.py"
    custom.write_text(bad_params_kind(name, body))
    run = s.run(install_args=s.install_args(custom, s.rule))
    run.assert_patched(from_cache=False)
    assert run.warnings == [f"astpatch: rule file {custom} failed to load: RuleError: rule 'pickler-custom': the edit "
                            f"kind {name}'s params() {problem}. The other rules still apply."]


@pytest.mark.parametrize("case", BAD_PARAMS)
def test_rule_refuses_an_edit_whose_params_are_not_a_dict(case):
    """Rule() refuses an edit whose params() does not return a dict, naming the kind and params()."""
    from astpatch import Rule, RuleError

    name, body, problem = BAD_PARAMS[case]
    namespace: dict = {}
    exec(bad_params_kind(name, body).split("\nRULE = ")[0], namespace)
    with pytest.raises(RuleError) as raised:
        Rule(id="pickler-custom", summary="s", module="pickler", target="Pickler.dumps", edit=namespace[name](),
             upstream="test fixture")
    assert str(raised.value) == f"rule 'pickler-custom': the edit kind {name}'s params() {problem}"


def test_rule_files_leave_no_bytecode_in_the_rule_directory(tmp_path):
    """Loading a rule directory with bytecode writing on writes no __pycache__ into it."""
    s = Scenario(tmp_path, rule_dir=True)
    s.write("plain", "VALUE = 1\n")
    # Bytecode writing on (unset), and the rule directory named, not its file.
    run = s.run(after="import plain", install_args=s.install_args(s.rules), PYTHONDONTWRITEBYTECODE=None)
    run.assert_patched(from_cache=False)
    assert list((s.site / "__pycache__").glob("plain.*.pyc"))  # bytecode writing was on in that process
    assert sorted(p.name for p in s.rules.iterdir()) == ["pickler_rule.py"]


RAISED = r'''
import json
import astpatch
astpatch.install(rules=[{rule!r}], cache_dir={cache!r})
raised = []
for attempt in range(2):
    try:
        import pickler
        raised.append(None)
    except Exception as error:
        raised.append([type(error).__name__, str(error), error.__context__ is None and error.__cause__ is None])
print(json.dumps({{"raised": raised, "outcomes": [[o.status, o.from_cache] for o in astpatch.applied()]}}))
'''

PROBLEMS = {
    "an edit that raises": (dict(rule_file=RAISING_RULE), "failed"),
    "a missing target": (dict(rule_file=RULE_FILE.replace('target="Pickler.dumps"', 'target="Pickler.gone"')),
                         "target-missing"),
    "a gate naming a distribution that is not installed": (dict(gate="pickle-dist>=1"), "not-applicable"),
}


def raised_twice(s: Scenario, *python_args: str, **env: str) -> dict:
    """RAISED in the scene: the two imports' exceptions, and the outcomes."""
    return s.execute(*python_args, "-c", RAISED.format(rule=str(s.rule), cache=str(s.cache)), **env).json()


@pytest.mark.parametrize("problem", PROBLEMS)
def test_a_rule_problem_under_warnings_as_errors(tmp_path, problem):
    """A rule problem under -W error: one AstpatchWarning an import, its message once, one outcome."""
    scene, status = PROBLEMS[problem]
    s = Scenario(tmp_path, **scene)  # type: ignore[arg-type]
    data = raised_twice(s, "-W", "error")
    (warning,) = s.run().warnings  # the oracle: what the problem says as a warning
    # A failed import is tried again: from the cache, and it raises again rather than run without the fix.
    assert data == {"raised": [["AstpatchWarning", warning, True]] * 2, "outcomes": [[status, False], [status, True]]}


@pytest.mark.parametrize("problem", [name for name, (_, status) in PROBLEMS.items() if status != "not-applicable"])
def test_a_rule_problem_in_strict_mode_raises_at_each_import(tmp_path, problem):
    """A rule problem in strict mode: an AstpatchError at each import of the module, not only the first."""
    scene, status = PROBLEMS[problem]
    s = Scenario(tmp_path, **scene)  # type: ignore[arg-type]
    data = raised_twice(s, ASTPATCH_STRICT="1")
    (warning,) = s.run().warnings
    assert data == {"raised": [["AstpatchError", warning, True]] * 2, "outcomes": [[status, False], [status, True]]}


# ---------------------------------------------------------------------------------------------
# Other distributions' rules (the astpatch.rules entry points) and their index

PLUGIN_RULES = '''
from astpatch import AddExceptTypes, Rule

def on(module):
    return Rule(id=f"plug-{module}", summary="s", module=module, target="Pickler.dumps",
                edit=AddExceptTypes(add=("ValueError",), converts_to="Bypass"), upstream="test fixture")

RULES = [on("second")]
'''

# Run after install(): the first import, at which discovery runs when the index is not current.
DISCOVERY = 'import fractions\nprint("discovered" if "importlib.metadata" in sys.modules else "indexed")'


def plugin_scene(tmp_path: Path, rules: str = PLUGIN_RULES) -> Scenario:
    """A scene without the rule file, where the distribution plugdist ships `rules` (module plug_rules);
    programs run in a directory of their own (sys.path's "")."""
    work = tmp_path / "work"
    work.mkdir()
    s = Scenario(tmp_path, rule_file=None, cwd=work)
    (install_dist(s.site, "plugdist", "1.0") / "entry_points.txt").write_text("[astpatch.rules]\nplug = plug_rules\n")
    s.write("plug_rules", rules)
    return s


def plugin_run(s: Scenario, **env: str | None):  # type: ignore[no-untyped-def]
    """The fault matrix's program with the scene's cache and no rule file: the rules are plugdist's."""
    return s.run(after=DISCOVERY, install_args=f"cache_dir={str(s.cache)!r}", **env)


def indexes(s: Scenario) -> list[Path]:
    return sorted(s.cache.glob("entry-points-*.index"))


def test_an_entry_point_whose_rule_module_now_also_targets_the_module(tmp_path):
    """A distribution's rule module, edited in place, now also targets the module: the entry-point index is stale."""
    s = plugin_scene(tmp_path)
    first = plugin_run(s)
    assert first["output"] == UPSTREAM and first.warnings == [] and "discovered" in first.stdout
    assert len(indexes(s)) == 1
    s.write("plug_rules", PLUGIN_RULES.replace('RULES = [on("second")]', 'RULES = [on("second"), on("pickler")]'))
    run = plugin_run(s)
    run.assert_patched(from_cache=False)
    assert run.warnings == [] and "discovered" in run.stdout
    # Indexed again, with the new targets: the next process reads no metadata and is patched.
    again = plugin_run(s)
    again.assert_patched(from_cache=True)
    assert "indexed" in again.stdout


def test_a_distribution_whose_entry_points_are_not_utf8(tmp_path):
    """An installed distribution's entry_points.txt is not UTF-8: one warning (one line from the CLI), the other rules apply."""
    s = Scenario(tmp_path)
    latin = install_dist(s.site, "latindist", "1.0")
    text = b"[console_scripts]\nlatin = caf\xe9:main\n"
    (latin / "entry_points.txt").write_bytes(text)
    with pytest.raises(UnicodeDecodeError) as decoding:
        text.decode("utf-8")
    message = (f"astpatch: other distributions' rules are not loaded: reading the installed distributions' entry "
               f"points failed with UnicodeDecodeError: {decoding.value} (the metadata in {latin}). astpatch's own "
               "rules and the program's still apply; repair or reinstall that distribution.")
    run = s.run()
    run.assert_patched(from_cache=False)
    assert run.warnings == [message]
    # No index hides the problem: the next process reports it too.
    assert indexes(s) == []
    again = s.run()
    again.assert_patched(from_cache=True)
    assert again.warnings == [message]

    listed = s.astpatch("list")
    assert listed.returncode == 0 and listed.stderr == message + "\n", listed.stderr
    assert "pickler-valueerror" in listed.stdout

    strict = s.run(ASTPATCH_STRICT="1")
    assert strict.returncode == 1
    assert f"astpatch._base.messages.AstpatchError: {message}" in strict.stderr
    assert "During handling" not in strict.stderr  # the error stands alone: its message says it all


OTHER_UID = 65534  # nobody


@pytest.mark.parametrize("change", ["world-writable", "group-writable", "owned by someone else"])
def test_an_entry_point_index_others_could_have_written(tmp_path, change):
    """An entry-point index that is group- or world-writable, or owned by another user: discovered again, replaced."""
    s = plugin_scene(tmp_path, PLUGIN_RULES.replace('on("second")', 'on("pickler")'))
    plugin_run(s).assert_patched(from_cache=False)
    (index,) = indexes(s)
    if change == "world-writable":
        os.chmod(index, 0o606)
    elif change == "group-writable":
        os.chmod(index, 0o620)
    else:
        if os.geteuid() != 0:
            pytest.fail("this case changes a file's owner and must run as root (CI does); run it as root")
        os.chown(index, OTHER_UID, -1)
    run = plugin_run(s)
    run.assert_patched(from_cache=True)
    assert "discovered" in run.stdout and len(run.warnings) == 1
    assert run.warnings[0].startswith(f"astpatch: the entry-point index {index} is not used because ")
    assert run.warnings[0].endswith("; other distributions' rules are discovered again. Delete it, or run "
                                    "`astpatch cache clear`.")
    # Replaced by a private index, which the next process uses.
    assert indexes(s) == [index]
    assert stat.S_IMODE(index.stat().st_mode) == 0o600 and index.stat().st_uid == os.geteuid()
    after = plugin_run(s)
    after.assert_patched(from_cache=True)
    assert after.warnings == [] and "indexed" in after.stdout
